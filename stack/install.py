"""Installing pinned server versions into the download cache, from package registries.

Maven Central (through the machine's `mvn`) brings the Kafka jars and the
Elasticsearch integ-test-zip; the Go module proxy (through `go`) brings FerretDB's
source, which is built here; Debian's archive (through `apt-get download`, no root
needed) brings PostgreSQL's packages, unpacked here with `dpkg-deb -x`, not installed. Everything lands under `<cache_dir>`, which the repo
ignores, and is reused when present. Each install is one step (stack.process.step):
one line on the terminal, the tools' own output in `<run_dir>/logs/install-<step>.log`,
whose tail is printed when the step fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from contextlib import contextmanager
from pathlib import Path

from meteoflow.settings import Settings, load_settings
from stack.pins import (
    ELASTICSEARCH_ZIP_SHA256,
    FERRETDB_MODULE_SUM,
    KAFKA_JARS_SHA256,
    POSTGRESQL_ARCH,
    POSTGRESQL_DEBS,
    POSTGRESQL_MAJOR,
    deb_file_name,
    verify_dir,
    verify_file,
)
from stack.process import StackError, current_step, step

KAFKA_VERSION = "4.1.1"
SLF4J_VERSION = "2.0.17"
LOG4J_VERSION = "2.24.3"
ELASTICSEARCH_VERSION = "8.19.7"
FERRETDB_VERSION = "v1.24.2"


def java_home(settings: Settings) -> Path:
    """The JDK to run Kafka, Elasticsearch and Spark with (17 or newer)."""
    if settings.java_home:
        home = settings.java_home
        java = home / "bin" / "java"
        if not java.exists():
            raise StackError(f"invalid setting METEOFLOW_JAVA_HOME={str(home)!r}: no bin/java there")
    else:
        found = shutil.which("java")
        if not found:
            raise StackError("Java not found: install a JDK 17+ (apt-get install openjdk-17-jdk-headless) or set METEOFLOW_JAVA_HOME")
        java = Path(os.path.realpath(found))
        home = java.parent.parent
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    if not match or int(match.group(1)) < 17:
        raise StackError(f"Java 17 or newer is needed; {java} reports: {out.splitlines()[0] if out else 'nothing'}")
    return home


def _need(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise StackError(f"`{tool}` not found on PATH; {hint}")
    return path


@contextmanager
def _step(settings: Settings, name: str, title: str):
    """One install step: its commands log to <run_dir>/logs/install-<name>.log."""
    with step(name, title, settings.run_dir / "logs") as running:
        yield running


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None,
         capture: bool = False) -> str:
    """Run a command inside the current step (into its log), or as a step of its own named `what`."""
    running = current_step()
    if running is not None:
        return running.run(cmd, env=env, cwd=cwd, capture=capture)
    with step(what, what, load_settings().run_dir / "logs") as running:
        return running.run(cmd, env=env, cwd=cwd, capture=capture)


def _maven_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["JAVA_HOME"] = str(java_home(settings))
    return env


def _mvn(settings: Settings, args: list[str], what: str, cwd: Path | None = None, strict: bool = True) -> None:
    """`strict`: a download whose .sha1 does not match (or is missing) fails (-C), not a warning."""
    mvn = _need("mvn", "install Maven (apt-get install maven); ./run.sh does this for you")
    repo = settings.cache_dir / "m2"
    _run(
        [mvn, "-B", *(["--strict-checksums"] if strict else []), f"-Dmaven.repo.local={repo}", *args],
        what,
        env=_maven_env(settings),
        cwd=cwd,
    )


def _maven_copy_dependencies(settings: Settings, target: Path, name: str, version: str,
                             dependencies: list[tuple[str, str, str]], out_dir: Path, what: str) -> None:
    """Resolve `dependencies` (group, artifact, version) and their runtime closure into out_dir."""
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in dependencies
    )
    pom = target / "pom.xml"
    pom.write_text(
        f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>meteoflow.stack</groupId><artifactId>{name}</artifactId><version>{version}</version>
  <dependencies>
{deps}
  </dependencies>
</project>
"""
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    _mvn(
        settings,
        ["-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={out_dir}", "-DincludeScope=runtime"],
        what,
    )


def kafka_libs(settings: Settings) -> Path:
    """Directory holding every jar of the Kafka broker (Maven Central, with dependencies)."""
    target = settings.cache_dir / "kafka" / KAFKA_VERSION
    libs = target / "libs"
    done = target / ".complete"
    if done.exists():
        return libs
    target.mkdir(parents=True, exist_ok=True)
    with _step(settings, "kafka", f"installing Apache Kafka {KAFKA_VERSION} jars (Maven Central)"):
        _maven_copy_dependencies(settings, target, "kafka-broker", KAFKA_VERSION, [
            ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
            ("org.slf4j", "slf4j-api", SLF4J_VERSION),
            ("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J_VERSION),
            ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
        ], libs, "resolving Kafka")
        verify_dir(libs, KAFKA_JARS_SHA256.get(KAFKA_VERSION), f"Kafka {KAFKA_VERSION}")
    done.write_text(KAFKA_VERSION)
    return libs


def elasticsearch_home(settings: Settings) -> Path:
    """The unpacked Elasticsearch integ-test-zip distribution (Maven Central)."""
    target = settings.cache_dir / "elasticsearch" / ELASTICSEARCH_VERSION
    home = target / f"elasticsearch-{ELASTICSEARCH_VERSION}"
    done = target / ".complete"
    if done.exists():
        return home
    target.mkdir(parents=True, exist_ok=True)
    artifact = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ELASTICSEARCH_VERSION}:zip"
    with _step(settings, "elasticsearch", f"installing Elasticsearch {ELASTICSEARCH_VERSION} (Maven Central)"):
        _mvn(
            settings,
            ["dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={target}"],
            "downloading Elasticsearch",
            cwd=target,
            strict=False,  # Central publishes no checksum for this zip: its SHA-256 pin is checked below
        )
        archive = target / f"elasticsearch-{ELASTICSEARCH_VERSION}.zip"
        try:
            verify_file(archive, ELASTICSEARCH_ZIP_SHA256.get(ELASTICSEARCH_VERSION),
                        f"Elasticsearch {ELASTICSEARCH_VERSION}")
        except StackError:
            archive.unlink(missing_ok=True)
            raise
        shutil.rmtree(home, ignore_errors=True)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
        for script in (home / "bin").iterdir():
            script.chmod(0o755)  # zipfile drops the executable bits
        archive.unlink()
    done.write_text(ELASTICSEARCH_VERSION)
    return home


def spark_kafka_jars(settings: Settings, spark_version: str) -> list[Path]:
    """The Spark Kafka connector matching pyspark, with the dependencies pyspark lacks.

    Resolved with Maven rather than `spark.jars.packages`: Ivy also asks for a
    `-tests` jar of spark-token-provider-kafka that Maven Central does not serve.
    """
    import pyspark

    target = settings.cache_dir / "spark-kafka" / spark_version
    jars = target / "jars"
    done = target / ".complete"
    if not done.exists():
        target.mkdir(parents=True, exist_ok=True)
        with _step(settings, "spark-kafka", f"installing the Spark Kafka connector {spark_version} (Maven Central)"):
            _maven_copy_dependencies(settings, target, "spark-kafka", spark_version, [
                ("org.apache.spark", "spark-sql-kafka-0-10_2.13", spark_version),
            ], jars, "resolving the Spark Kafka connector")
        # Keep only what pyspark does not ship already (same artifact, any version).
        shipped = {re.sub(r"-\d[\w.]*\.jar$", "", p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
        for jar in jars.glob("*.jar"):
            if re.sub(r"-\d[\w.]*\.jar$", "", jar.name) in shipped:
                jar.unlink()
        done.write_text(spark_version)
    return sorted(jars.glob("*.jar"))


def _go_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(settings.cache_dir / "go" / "mod"),
        GOCACHE=str(settings.cache_dir / "go" / "build"),
        GOFLAGS="-modcacherw",
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
    )
    return env


def go_env(settings: Settings) -> dict[str, str]:
    """The environment `go` builds run with: module and build caches under the cache dir,
    static binaries, the local toolchain only (docker/compose_tool.py builds Compose with it)."""
    return _go_env(settings)


# FerretDB 1.24's update handler defers closing each update's query iterator until the
# whole bulk command returns. Every matching update keeps a SQLite connection, so a bulk
# of more than 100 updates that match existing documents (exactly what an idempotent
# replay sends) exhausts the 100-connection pool and wedges the server for every client.
# The patch closes each iterator as soon as its update is done.
_FERRETDB_UPDATE_FILE = "internal/handler/msg_update.go"
_FERRETDB_UPDATE_BUG = """		closer := iterator.NewMultiCloser()
		defer closer.Close()

		closer.Add(res.Iter)

		iter := common.FilterIterator(res.Iter, closer, u.Filter)

		if !u.Multi {
			iter = common.LimitIterator(iter, closer, 1)
		}

		result, err := common.UpdateDocument(ctx, c, "update", iter, &u)
		if err != nil {"""
_FERRETDB_UPDATE_FIX = """		closer := iterator.NewMultiCloser()

		closer.Add(res.Iter)

		iter := common.FilterIterator(res.Iter, closer, u.Filter)

		if !u.Multi {
			iter = common.LimitIterator(iter, closer, 1)
		}

		result, err := common.UpdateDocument(ctx, c, "update", iter, &u)

		// meteoflow: release this update's iterator (and its connection) now, not at return
		closer.Close()

		if err != nil {"""


def patch_ferretdb(source_dir: Path) -> None:
    path = source_dir / _FERRETDB_UPDATE_FILE
    text = path.read_text()
    if _FERRETDB_UPDATE_BUG not in text:
        raise StackError(f"FerretDB {FERRETDB_VERSION}: {_FERRETDB_UPDATE_FILE} is not the code the patch expects")
    path.write_text(text.replace(_FERRETDB_UPDATE_BUG, _FERRETDB_UPDATE_FIX))


def ferretdb_binary(settings: Settings) -> Path:
    """FerretDB 1.x, fetched from the Go module proxy and built with the machine's Go.

    `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.x` builds a binary that
    panics at start: the module lacks the version stamp (build/version/version.txt)
    its release build writes. So the module source is downloaded, stamped with its
    own version, patched (see `patch_ferretdb`), and built from there.
    """
    target = settings.cache_dir / "ferretdb" / f"{FERRETDB_VERSION}-meteoflow1"
    binary = target / "ferretdb"
    if binary.exists():
        return binary
    go = _need("go", "install Go 1.22+ (apt-get install golang) to build FerretDB")
    env = _go_env(settings)
    with _step(settings, "ferretdb", f"building FerretDB {FERRETDB_VERSION} (Go module proxy, about a minute)"):
        out = _run([go, "mod", "download", "-x", "-json", f"github.com/FerretDB/FerretDB@{FERRETDB_VERSION}"],
                   f"downloading FerretDB {FERRETDB_VERSION}", env=env, capture=True)
        module = json.loads(out)
        if module.get("Sum") != FERRETDB_MODULE_SUM.get(FERRETDB_VERSION):
            raise StackError(f"FerretDB {FERRETDB_VERSION}: module sum {module.get('Sum')} is not the one "
                             f"stack/pins.py pins ({FERRETDB_MODULE_SUM.get(FERRETDB_VERSION)})")
        source = Path(module["Dir"])
        build_dir = target / "src"
        shutil.rmtree(build_dir, ignore_errors=True)
        shutil.copytree(source, build_dir)
        (build_dir / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        patch_ferretdb(build_dir)
        _run([go, "build", "-trimpath", "-o", str(binary), "./cmd/ferretdb"], "building FerretDB", env=env,
             cwd=build_dir)
        shutil.rmtree(build_dir, ignore_errors=True)
    return binary


def postgresql_root(settings: Settings) -> Path:
    """PostgreSQL from Debian's packages (stack/pins.py), unpacked under the cache: the tree a
    package install would lay under /, here under `<cache>/postgresql/<version>/root`.
    PostgreSQL is relocatable (it finds its share/ and lib/ from its binary's place); the
    libraries beside it are found through `postgresql_env`."""
    version = POSTGRESQL_DEBS[f"postgresql-{POSTGRESQL_MAJOR}"][0]
    target = settings.cache_dir / "postgresql" / version
    root = target / "root"
    done = target / ".complete"
    if done.exists():
        return root
    apt_get = _need("apt-get", "PostgreSQL comes from Debian's packages: run on Debian 12, or use "
                               "METEOFLOW_STORE_BACKEND=sqlite")
    dpkg = _need("dpkg", "PostgreSQL's Debian packages are unpacked with dpkg-deb")
    dpkg_deb = _need("dpkg-deb", "PostgreSQL's Debian packages are unpacked with dpkg-deb")
    debs = target / "debs"
    with _step(settings, "postgresql", f"installing PostgreSQL {version} (Debian packages)"):
        arch = _run([dpkg, "--print-architecture"], "checking the architecture",
                    capture=True).strip()
        if arch != POSTGRESQL_ARCH:
            raise StackError(f"PostgreSQL: stack/pins.py pins Debian's {POSTGRESQL_ARCH} packages, this machine is "
                             f"{arch}; use METEOFLOW_STORE_BACKEND=sqlite")
        shutil.rmtree(debs, ignore_errors=True)
        debs.mkdir(parents=True)
        debs.chmod(0o755)  # apt's unprivileged downloader (_apt) writes here when we are root
        download = [apt_get, "download", *(f"{name}={ver}" for name, (ver, _sha) in POSTGRESQL_DEBS.items())]
        try:
            try:
                _run(download, "downloading PostgreSQL", cwd=debs)
            except StackError:
                if os.geteuid() != 0:
                    raise
                # A fresh machine's package lists may be missing or predate the pinned versions.
                _run([apt_get, "update", "-qq"], "updating Debian's package lists")
                _run(download, "downloading PostgreSQL", cwd=debs)
        except StackError as exc:
            raise StackError(f"{exc}. Debian serves only the current version of a package: if `apt-get update` "
                             "does not help, a security update replaced a version stack/pins.py pins (see there "
                             "how to refresh them), or use METEOFLOW_STORE_BACKEND=sqlite") from None
        shutil.rmtree(root, ignore_errors=True)
        for name, (ver, sha) in POSTGRESQL_DEBS.items():
            deb = debs / deb_file_name(name, ver)
            verify_file(deb, sha, f"PostgreSQL package {name}")  # before anything of it is unpacked
        for name, (ver, _sha) in POSTGRESQL_DEBS.items():
            _run([dpkg_deb, "-x", str(debs / deb_file_name(name, ver)), str(root)], f"unpacking {name}")
        shutil.rmtree(debs)
    done.write_text(version)
    return root


def postgresql_bin(settings: Settings) -> Path:
    return postgresql_root(settings) / "usr" / "lib" / "postgresql" / POSTGRESQL_MAJOR / "bin"


def postgresql_env(settings: Settings) -> dict[str, str]:
    """The environment PostgreSQL's programs run with: the unpacked libraries first."""
    root = postgresql_root(settings)
    libs = [str(root / "usr" / "lib" / "x86_64-linux-gnu"), str(root / "lib" / "x86_64-linux-gnu")]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [p for p in [env.get("LD_LIBRARY_PATH")] if p])
    return env


def install_all(settings: Settings) -> None:
    """Everything the stack runs, fetched or built before anything starts (a no-op once cached):
    the steps print one line each here rather than in the middle of a server's start."""
    import pyspark

    java_home(settings)
    kafka_libs(settings)
    elasticsearch_home(settings)
    ferretdb_binary(settings)
    if settings.store_backend == "postgresql":
        postgresql_root(settings)
    spark_kafka_jars(settings, pyspark.__version__)


def cache_size(settings: Settings) -> int:
    total = 0
    for root, _dirs, files in os.walk(settings.cache_dir):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
