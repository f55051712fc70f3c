"""SHA-256 pins of every server artifact the stack downloads, checked after each download.

Maven Central serves a .sha1 beside each jar, which Maven checks (strictly: `-C`), but a
registry that was tampered with serves a matching .sha1 too. These pins come from the
artifacts as first downloaded (the Kafka jars' SHA-1s cross-checked against Central's
.sha1 files; the Elasticsearch zip, for which Central publishes no checksum at all,
downloaded twice on different days with the same digest; the Debian packages as
`apt-get download` fetched them, which also checks them against Debian's signed index). A new
version means new pins: `python -m stack.pins PATH...` prints the SHA-256 of files to paste here.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from stack.process import StackError

# org.elasticsearch.distribution.integ-test-zip:elasticsearch:8.19.7:zip
ELASTICSEARCH_ZIP_SHA256 = {
    "8.19.7": "cb7f86fb6e68e85ef6f531ae5c68458ecfe42371150403b22b2ed21381581cbb",
}

# The Kafka broker's runtime closure (kafka_2.13 4.1.1, slf4j 2.0.17, log4j 2.24.3), jar by jar.
KAFKA_JARS_SHA256 = {
    "4.1.1": {
        "HdrHistogram-2.2.2.jar": "22d1d4316c4ec13a68b559e98c8256d69071593731da96136640f864fa14fad8",
        "argparse4j-0.7.0.jar": "65ceb669d88f63306c680f8088bbf765bbca72d288a61a03703000076c3d3f56",
        "caffeine-3.2.0.jar": "ec411dfdf0c03f25218648ce89861630b71680e5858a9a7278ebac8e55cab3d7",
        "commons-beanutils-1.9.4.jar": "7d938c81789028045c08c065e94be75fc280527620d5bd62b519d5838532368a",
        "commons-collections-3.2.2.jar": "eeeae917917144a68a741d4c0dff66aa5c5c5fd85593ff217bced3fc8ca783b8",
        "commons-digester-2.1.jar": "e0b2b980a84fc6533c5ce291f1917b32c507f62bcad64198fff44368c2196a3d",
        "commons-logging-1.3.2.jar": "6b858424f518015f32bfcd1183a373f4a827d72d026b6031da0c91cf0e8f3489",
        "commons-validator-1.9.0.jar": "c3c14748e2d78db58df88808740711bd643b32c45ffa7b8a739f00fb467cd7d7",
        "hash4j-0.22.0.jar": "23028a3fd006e530bf495f551083208187cafd8f80624d048eba56442f16a50e",
        "jackson-annotations-2.19.0.jar": "ead60e9cac0e42b57092b9e2d087ff43536e9477d4486ba393037a8cc156cda7",
        "jackson-core-2.19.0.jar": "da8e859bac94874528116a25f20c68560e4287acbf27628711b8a4f96b028430",
        "jackson-databind-2.19.0.jar": "ceda311f476c3b18e1d2b240c94e2dcb9c8d44e70f8afa9facab88bac4ddc03a",
        "jackson-dataformat-csv-2.19.0.jar": "bec1150426b0616bb488149b952b45a0dcb16d9416b017c38f6455ad9389bc68",
        "jackson-dataformat-yaml-2.19.0.jar": "46e54dcbd39d4d12cda18ec9276e7b888e08fc765ea0c77e71662306f0d4abc4",
        "jackson-datatype-jdk8-2.19.0.jar": "04f1a3f9da8155995dd00098d6847cdb9b7af67f4a3028c94031eff017c8e3e5",
        "jopt-simple-5.0.4.jar": "df26cc58f235f477db07f753ba5a3ab243ebe5789d9f89ecf68dd62ea9a66c28",
        "jose4j-0.9.6.jar": "7314af50cde9c99e8eaf43eee617a23edcc6bb43036221064355094999d837ef",
        "jspecify-1.0.0.jar": "1fad6e6be7557781e4d33729d49ae1cdc8fdda6fe477bb0cc68ce351eafdfbab",
        "kafka-clients-4.1.1.jar": "00247122a572c3d3ae4eb60a50192a5811bc0181f51923d13018600f892e821d",
        "kafka-coordinator-common-4.1.1.jar": "2072fc1ce7e0505149bba22a463a5909a899c6235c4fa696f15c21194a7baf60",
        "kafka-group-coordinator-4.1.1.jar": "3eb5a673b69d5992cfa86c5436f39adbf4ce284046a4c999ec6af0a8e31c5589",
        "kafka-group-coordinator-api-4.1.1.jar": "3d1801d2329dcf7d273796a034d61e6c7e0f851f384d0afbdd3a2e6cbd17a968",
        "kafka-metadata-4.1.1.jar": "a689665751415b6456de1ecb013042cb7ba99ac68fd8c3e8bf28e098feb43218",
        "kafka-raft-4.1.1.jar": "4810c93d93d1935dd54de61c5ba130f501c7fe11bc49ccd3ee05ec857818a72a",
        "kafka-server-4.1.1.jar": "9f6aff422855491aad54326eca8d604163d6d3a6507cc48ffe3ce6de73caf79a",
        "kafka-server-common-4.1.1.jar": "207edecd8322cf6c13d76d84addea7fd0ec441dc8d698cf69df43210ccdc0a94",
        "kafka-share-coordinator-4.1.1.jar": "e6bec53428c77bf6579321836d482542a93575f7c08e860a26c9f2c7f6059dac",
        "kafka-storage-4.1.1.jar": "1f85b82853eaec0143efbef7e3a4d4be8929ff83a386326431e0c2d0a557e58c",
        "kafka-storage-api-4.1.1.jar": "8c0a712472185d706c6bf5ae24bf5d84a8e396fd4745c708e6146a415f7fa7f7",
        "kafka-tools-api-4.1.1.jar": "542b08fe20cf872a2d866acdff61ea338b469219dc2ebfae727a1d9ea5737e1a",
        "kafka-transaction-coordinator-4.1.1.jar": "a261b5730ac9e3205df7af5d45180d851e9d5f729ce1275c67511a6f51f73755",
        "kafka_2.13-4.1.1.jar": "e89428126cc7630a802123ba27aac4442816840b66d60670226feaff65f24fd1",
        "log4j-api-2.24.3.jar": "5b4a0a0cd0e751ded431c162442bdbdd53328d1f8bb2bae5fc1bbeee0f66d80f",
        "log4j-core-2.24.3.jar": "7eb4084596ae25bd3c61698e48e8d0ab65a9260758884ed5cbb9c6e55c44a56a",
        "log4j-slf4j2-impl-2.24.3.jar": "cdaac22e40ec30c4096e1ebe8c454c8826c0d1c378d7db5d7b3ad166354b0bd3",
        "lz4-java-1.8.0.jar": "d74a3334fb35195009b338a951f918203d6bbca3d1d359033dc33edd1cadc9ef",
        "metrics-core-2.2.0.jar": "6b7a14a6f34c10f8683f7b5e2f39df0f07b58c7dff0e468ebbc713905c46979c",
        "pcollections-4.0.2.jar": "2bbeef5797a241300c4f7513cd546239629ed7deda4fc0c31df90bb95f5f13ef",
        "re2j-1.8.jar": "7b52c72156dd7f98b3237a5b35c1d34fba381b21048c89208913ad80a45dfbd7",
        "scala-library-2.13.16.jar": "1ebb2b6f9e4eb4022497c19b1e1e825019c08514f962aaac197145f88ed730f1",
        "scala-logging_2.13-3.9.5.jar": "87a3017d3f43e6ace7566fe4c3d615134c6914ff871c8d64bb32ca1d996d0545",
        "scala-reflect-2.13.16.jar": "fb49ccd9cac7464486ab993cda20a3c1569d8ef26f052e897577ad2a4970fb1d",
        "slf4j-api-2.0.17.jar": "7b751d952061954d5abfed7181c1f645d336091b679891591d63329c622eb832",
        "snakeyaml-2.4.jar": "ef779af5d29a9dde8cc70ce0341f5c6f7735e23edff9685ceaa9d35359b7bb7f",
        "snappy-java-1.1.10.7.jar": "4c766cb3f855415ee734b2392949a0b6f12a60879334a74518deaf6270d32e36",
        "zstd-jni-1.5.6-10.jar": "b6c3237e24b8252a5a9c3a0e1ae30ef8f323412e74bd358548b7a9e527d676df",
    },
}

# FerretDB's module as the Go checksum database knows it (`go mod download -json` "Sum").
FERRETDB_MODULE_SUM = {
    "v1.24.2": "h1:trrUU0LbmusMbyubhPS1IELncvrIwKrsRT2LW1UUWCw=",
}


# PostgreSQL for FerretDB's postgresql backend: Debian 12 (bookworm, amd64) packages, by package
# name: (version, SHA-256 of its .deb). The server and the libraries it links that a minimal
# Debian may lack; the base system's (libc, zlib, zstd, lz4, pam, systemd...) are not fetched.
# Debian's pool serves only the current version of each: after a security update, `apt-get
# update`, `apt-get download NAME` each package again and pin the new version and digest here.
POSTGRESQL_MAJOR = "15"
POSTGRESQL_DEBS = {
    "postgresql-15": ("15.20-0+deb12u1", "8566850f295c2cb5034ff5dd5b40caf97eea81b75a841c8d1f691c05ab8815db"),
    "libpq5": ("15.20-0+deb12u1", "ac8a72cc33453f75ac605b4f6b8f9febae303b9d9a61255a042a87a7f69ac5c7"),
    "libicu72": ("72.1-3+deb12u1", "f7f6f99c6d7b025914df2447fc93e11d22c44c0c8bdd8b6f36691c9e7ddcef88"),
    "libxml2": ("2.9.14+dfsg-1.3~deb12u6", "4460e39dda10a815881374217cde08474747cfa018358cd8612c14b390eff53b"),
    "libssl3": ("3.0.22-1~deb12u2", "cb4784740daa9b3b0eaea2b444bbefa686794afbbf3d678d238c1fd9875f2efd"),
    "libldap-2.5-0": ("2.5.13+dfsg-5", "4b6c30f6554149c594628d945edc6003f0eea8d0cc1341638c0e71375db147ed"),
    "libsasl2-2": ("2.1.28+dfsg-10+deb12u1", "d6f20408e2be92ebd9f5e3b1c1935b075efb3f03abb5f48f7b991a0ad3e2d6a5"),
    "libgssapi-krb5-2": ("1.20.1-2+deb12u5", "d8b87aea91b956b416c01a28c44ff6228315ae3b73de40acddac3dc5043607d2"),
    "libkrb5-3": ("1.20.1-2+deb12u5", "c90801be09701af221b54dd502a59cb378b7284ff31e480738baca317d2f7653"),
    "libk5crypto3": ("1.20.1-2+deb12u5", "7b6e47d15c5c9cdcd456137533d8308aeba608a54cec73b28bd59bfc4b54cf06"),
    "libkrb5support0": ("1.20.1-2+deb12u5", "8b9c05f2d8d461a10d657b118f572af5bf8fd6c8f93dcef81e852c5ab0f428ab"),
    "libkeyutils1": ("1.6.3-2", "cfac89e6a7a54ff3c6a4f843310e25efeddaa771baeae470bd98bd588c373563"),
}
POSTGRESQL_ARCH = "amd64"


def deb_file_name(package: str, version: str, arch: str = POSTGRESQL_ARCH) -> str:
    """The file `apt-get download` writes: an epoch's ':' is escaped as '%3a'."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected: str | None, what: str) -> None:
    """Raise a StackError naming the file and both digests unless `path` has the pinned SHA-256."""
    if expected is None:
        raise StackError(f"{what}: no SHA-256 pinned for {path.name} in stack/pins.py; refusing an unverified download")
    actual = sha256(path)
    if actual != expected:
        raise StackError(f"{what}: {path} has SHA-256 {actual}, but stack/pins.py pins {expected}: the download "
                         "is corrupt or not the artifact we expect; it was not used (delete it and retry)")


def verify_dir(directory: Path, pins: dict[str, str] | None, what: str) -> None:
    """Every jar of `directory` is pinned and matches, and every pinned jar is there."""
    if pins is None:
        raise StackError(f"{what}: no SHA-256 pins for this version in stack/pins.py")
    jars = {p.name: p for p in directory.glob("*.jar")}
    if missing := sorted(set(pins) - set(jars)):
        raise StackError(f"{what}: pinned jar(s) missing from {directory}: {', '.join(missing)}")
    for name, path in sorted(jars.items()):
        verify_file(path, pins.get(name), what)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f'"{Path(arg).name}": "{sha256(Path(arg))}",')
