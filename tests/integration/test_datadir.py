"""What member-init reads from a data directory, checked against WALs that real etcd wrote."""

from __future__ import annotations

from etcd_procs import LocalEtcdCluster

from etcd_operator.datadir import read_identity
from etcd_operator.etcd import EtcdClient
from etcd_operator.memberinit import Identity, Verdict, check_data_dir


async def test_wal_identity_is_the_member_and_cluster_etcd_reports(
    etcd3: LocalEtcdCluster, client3: EtcdClient
) -> None:
    listed = await client3.member_list()
    ids = {m.name: m.id for m in listed.members}
    await client3.put(b"k", b"v")
    etcd3.stop_all()
    for name, member in etcd3.members.items():
        identity = read_identity(member.data_dir)
        assert identity is not None
        assert identity.member_id == ids[name]
        assert identity.cluster_id == listed.cluster_id


async def test_member_init_accepts_its_own_log_and_refuses_a_neighbour_s(
    etcd3: LocalEtcdCluster, client3: EtcdClient
) -> None:
    ids = {m.name: m.id for m in (await client3.member_list()).members}
    etcd3.stop_all()
    (first, first_id), (_, other_id) = sorted(ids.items())[:2]
    data = etcd3.members[first].data_dir
    me = Identity("uid", first)
    assert check_data_dir(data, me, expect_data=True, member_id=first_id)[0] is Verdict.OK
    verdict, _ = check_data_dir(data, me, expect_data=True, member_id=other_id)
    assert verdict is Verdict.FOREIGN_DATA
