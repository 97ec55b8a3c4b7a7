// Command etcd is a multi-call binary: etcd, etcdctl and etcdutl of one etcd
// release, linked once. It dispatches on the name it was started as (the build
// creates etcdctl and etcdutl as symlinks to it), or else on its first
// argument (`etcd-3.6 etcdctl version`).
package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"go.etcd.io/etcd/etcdctl/v3/ctlv3"
	"go.etcd.io/etcd/etcdutl/v3/etcdutl"
	"go.etcd.io/etcd/pkg/v3/cobrautl"
	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	name := filepath.Base(os.Args[0])
	if len(os.Args) > 1 && !isTool(name) && isTool(os.Args[1]) {
		name = os.Args[1]
		os.Args = os.Args[1:]
	}
	switch name {
	case "etcdctl":
		// As upstream's main: ETCDCTL_API would otherwise be read as an unknown flag.
		os.Unsetenv("ETCDCTL_API")
		ctlv3.MustStart()
	case "etcdutl":
		if err := etcdutlCommand().Execute(); err != nil {
			cobrautl.ExitWithError(cobrautl.ExitError, err)
		}
	default:
		etcdmain.Main(os.Args)
	}
}

func isTool(name string) bool {
	return name == "etcd" || name == "etcdctl" || name == "etcdutl"
}

// etcdutlCommand mirrors etcdutl's package main (ctl.go), which cannot be imported.
func etcdutlCommand() *cobra.Command {
	cobra.EnablePrefixMatching = true
	root := &cobra.Command{
		Use:        "etcdutl",
		Short:      "An administrative command line tool for etcd3.",
		SuggestFor: []string{"etcdutl"},
	}
	root.PersistentFlags().StringVarP(&etcdutl.OutputFormat, "write-out", "w", "simple", "set the output format (fields, json, protobuf, simple, table)")
	root.AddCommand(
		etcdutl.NewBackupCommand(),
		etcdutl.NewDefragCommand(),
		etcdutl.NewSnapshotCommand(),
		etcdutl.NewVersionCommand(),
		etcdutl.NewCheckCommand(),
	)
	root.SetHelpTemplate(`{{.UsageString}}`)
	return root
}
