#!/usr/bin/env bash
# Build QEMU 7.2's tests/qtest/ide-test from Debian's source package and print
# the path of the binary on stdout (everything else goes to stderr).
#
# The binary is cached under ${XDG_CACHE_HOME:-$HOME/.cache}/vmdma/ and reused
# while it still runs; QEMU's source is unpacked in a temporary directory
# outside the repository and removed afterwards. Works from nothing on Debian
# 12 as root (or with sudo): adds a deb-src entry for the configured Debian
# mirror, installs the build dependencies, configures a minimal x86_64 build
# and builds that one test.
set -euo pipefail

cache="${XDG_CACHE_HOME:-$HOME/.cache}/vmdma/qemu-7.2-ide-test"
bin="$cache/ide-test"

log() { printf '%s\n' "$*" >&2; }

# Listing the tests needs no QEMU, only a binary name with the target suffix.
if [ -x "$bin" ] && QTEST_QEMU_BINARY=/nonexistent/qemu-system-x86_64 "$bin" -l >/dev/null 2>&1; then
    log "qemu-ide-test: cached $bin"
    printf '%s\n' "$bin"
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# A deb-src entry for every Debian deb entry configured (deb822 or one-line).
srcs=/etc/apt/sources.list.d/vmdma-deb-src.sources
if [ ! -e "$srcs" ] && ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    tmp_srcs="$(mktemp)"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed -E 's/^Types:.*$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$tmp_srcs"
    elif [ -f /etc/apt/sources.list ]; then
        sed -nE 's/^deb (.*)$/deb-src \1/p' /etc/apt/sources.list >"$tmp_srcs"
        srcs=/etc/apt/sources.list.d/vmdma-deb-src.list
    else
        log "qemu-ide-test: no Debian apt sources found"
        exit 1
    fi
    $SUDO install -m 0644 "$tmp_srcs" "$srcs"
    rm -f "$tmp_srcs"
fi

log "qemu-ide-test: installing build dependencies"
$SUDO apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    dpkg-dev build-essential python3 meson ninja-build pkg-config \
    libglib2.0-dev libpixman-1-dev libfdt-dev flex bison >&2

work="$(mktemp -d "${TMPDIR:-/tmp}/vmdma-qemu-src.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "qemu-ide-test: fetching the qemu source package"
(cd "$work" && apt-get source -qq qemu >&2)
src="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -1)"
if [ -z "$src" ]; then
    log "qemu-ide-test: apt-get source qemu unpacked nothing"
    exit 1
fi
case "$(basename "$src")" in
qemu-7.2*) ;;
*)
    log "qemu-ide-test: expected QEMU 7.2, got $(basename "$src")"
    exit 1
    ;;
esac

# The dfsg tarball lacks the edk2 firmware blobs that meson would unpack.
sed -i -E 's/^([[:space:]]*)unpack_edk2_blobs = .*/\1unpack_edk2_blobs = false/' "$src/meson.build"
if grep -E 'unpack_edk2_blobs = ' "$src/meson.build" | grep -qv 'unpack_edk2_blobs = false$'; then
    log "qemu-ide-test: could not disable unpack_edk2_blobs in meson.build"
    exit 1
fi

log "qemu-ide-test: configuring and building tests/qtest/ide-test"
start=$(date +%s)
mkdir "$src/build"
(
    cd "$src/build"
    ../configure --target-list=x86_64-softmmu --disable-docs --disable-werror \
        --without-default-features --disable-tools --disable-install-blobs >&2
    ninja tests/qtest/ide-test >&2
)
log "qemu-ide-test: built in $(($(date +%s) - start)) s"

mkdir -p "$cache"
install -m 0755 "$src/build/tests/qtest/ide-test" "$bin.tmp"
mv "$bin.tmp" "$bin"
basename "$src" >"$cache/source-version"
printf '%s\n' "$bin"
