// Command helm: the Helm CLI at the version pinned in go.mod, for rendering, linting and
// installing the etcd-operator chart in tests (charts/etcd-operator).
package main

import (
	"errors"
	"os"

	helmcmd "helm.sh/helm/v4/pkg/cmd"
	"helm.sh/helm/v4/pkg/kube"
)

func main() {
	// Objects helm applies are recorded under this field manager.
	kube.ManagedFieldsManager = "helm"
	root, err := helmcmd.NewRootCmd(os.Stdout, os.Args[1:], helmcmd.SetupLogging)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if err := root.Execute(); err != nil {
		var cmdErr helmcmd.CommandError
		if errors.As(err, &cmdErr) {
			os.Exit(cmdErr.ExitCode)
		}
		os.Exit(1)
	}
}
