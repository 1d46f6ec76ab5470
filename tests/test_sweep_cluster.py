"""`reacher sweep --address`: trials run on the nodes of an existing Ray cluster, here a
simulated multi-node one on this machine (Ray's own `ray.cluster_utils.Cluster`), and a
failing trial is reported with its error while the others go on."""

from __future__ import annotations

import csv

import pytest
from sweep_helpers import needs_ray, write_spec

from reacher.tools.sweep import run_sweep


@needs_ray
@pytest.mark.slow
def test_a_sweep_on_a_two_node_cluster_uses_both_and_reports_a_failing_trial(tmp_path, capsys):
    from ray.cluster_utils import Cluster

    # The head offers no CPU, so every trial must run on one of the two worker nodes.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        broken = tmp_path / "broken.xml"
        broken.write_text("<mujoco><worldbody></mujoco>")
        spec = write_spec(tmp_path, f'steps = 200\nhidden_sizes = "16,16"\nseeds = [0, 1]\n'
                                    f'[grid]\narm = ["two_link", "{broken}"]\n')
        out = tmp_path / "out"

        summary = run_sweep(spec, out, address=cluster.address)

        assert f"running 4 trials on Ray cluster at {cluster.address}, 2 CPUs" in capsys.readouterr().err
        assert [r.trial.name for r in summary.failed] == ["arm=broken,seed=0", "arm=broken,seed=1"]
        with open(out / "results.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert [(r["arm"], r["seed"]) for r in rows] == [("two_link", "0"), ("two_link", "1"),
                                                         (str(broken), "0"), (str(broken), "1")]
        for row in rows[:2]:
            assert row["error"] == "" and row["steps"] == "200"
        for row in rows[2:]:
            assert row["error"].startswith(f"arm file {broken}: is malformed XML")
            assert row["success_rate"] == ""
        # Two one-CPU trials at a time on two one-CPU nodes: both nodes ran trials.
        assert {r.node for r in summary.records} == {w.node_id for w in workers}
    finally:
        cluster.shutdown()
