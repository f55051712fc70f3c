"""The Spark standalone cluster's processes (stack/spark_cluster.py): only when asked for, bound to
the bind host, ports derived from the settings, and the job pointed at it."""

from meteoflow.settings import load_settings
from stack.servers import servers
from stack.services import StreamingService


def test_no_cluster_unless_workers_are_asked_for():
    assert not [s.name for s in servers(load_settings()) if s.name.startswith("spark")]


def test_a_master_then_each_worker_bound_to_the_bind_host(tmp_path):
    settings = load_settings(run_dir=tmp_path, spark_cluster_workers=2, spark_cluster_port=17077,
                             spark_cluster_webui_port=18470, spark_worker_cores=2, spark_worker_memory="2g")
    procs = servers(settings)
    assert [p.name for p in procs][-3:] == ["spark-master", "spark-worker-1", "spark-worker-2"]
    master, first, second = procs[-3:]
    assert master.command()[1:] == ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                    "--port", "17077", "--webui-port", "18470"]
    assert master.command()[0].endswith("bin/spark-class")
    assert (first.port, second.port) == (18471, 18472)
    args = second.command()
    assert args[1:3] == ["org.apache.spark.deploy.worker.Worker", "spark://127.0.0.1:17077"]
    assert args[args.index("--cores") + 1] == "2" and args[args.index("--memory") + 1] == "2g"
    assert args[args.index("--work-dir") + 1] == str(tmp_path / "spark-worker-2" / "work")
    env = first.environment()
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1" and env["METEOFLOW_RUN_DIR"] == str(tmp_path)
    assert [p.name for p in servers(settings, ["spark-worker-2"])] == ["spark-worker-2"]


def test_the_job_runs_on_the_started_cluster_unless_a_master_is_set(tmp_path):
    with_cluster = load_settings(run_dir=tmp_path, spark_cluster_workers=1)
    assert StreamingService(with_cluster).environment()["METEOFLOW_SPARK_MASTER"] == "spark://127.0.0.1:7077"
    chosen = load_settings(run_dir=tmp_path, spark_cluster_workers=1, spark_master="spark://10.0.0.5:7077")
    assert StreamingService(chosen).environment().get("METEOFLOW_SPARK_MASTER") != "spark://127.0.0.1:7077"
