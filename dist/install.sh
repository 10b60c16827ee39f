#!/bin/sh
# Installs this enforcer build (cargo xtask dist's target/dist/enforcer-VERSION/);
# run as root from this directory.
#
#   sh install.sh                              # the program in /usr/local, policy and units in /etc
#   PREFIX=/opt/enforcer sh install.sh         # all of it below /opt/enforcer
#   PREFIX=/usr DESTDIR=/tmp/pkg sh install.sh # staged for a package
#
# PREFIX (default /usr/local): the program, man pages, completions, docs.
# SYSCONFDIR: the policy; /etc for PREFIX /usr or /usr/local, else $PREFIX/etc.
# UNITDIR: the systemd units; /etc/systemd/system for PREFIX /usr/local,
#   /usr/lib/systemd/system for /usr, else $PREFIX/lib/systemd/system
#   (`systemctl link` them from there).
# DESTDIR: prepended to every path written, never to the paths the units name.
set -eu
cd "$(dirname "$0")"
PREFIX="${PREFIX:-/usr/local}"
PREFIX="${PREFIX%/}"
case "$PREFIX" in
/usr | /usr/local) : "${SYSCONFDIR:=/etc}" ;;
*) : "${SYSCONFDIR:=$PREFIX/etc}" ;;
esac
case "$PREFIX" in
/usr/local) : "${UNITDIR:=/etc/systemd/system}" ;;
/usr) : "${UNITDIR:=/usr/lib/systemd/system}" ;;
*) : "${UNITDIR:=$PREFIX/lib/systemd/system}" ;;
esac
DESTDIR="${DESTDIR:-}"
D="$DESTDIR"

install -D -m 0755 bin/enforcer "$D$PREFIX/sbin/enforcer"
install -d "$D$PREFIX/share/man/man8"
install -m 0644 share/man/man8/*.8 "$D$PREFIX/share/man/man8/"
install -D -m 0644 share/bash-completion/completions/enforcer "$D$PREFIX/share/bash-completion/completions/enforcer"
install -D -m 0644 share/zsh/site-functions/_enforcer "$D$PREFIX/share/zsh/site-functions/_enforcer"
install -D -m 0644 share/fish/vendor_completions.d/enforcer.fish "$D$PREFIX/share/fish/vendor_completions.d/enforcer.fish"
install -D -m 0644 share/doc/enforcer/README.md "$D$PREFIX/share/doc/enforcer/README.md"
install -D -m 0644 examples/policy.toml "$D$PREFIX/share/doc/enforcer/examples/policy.toml"
# The policy is root's alone to change (the agent refuses one others may write).
[ -e "$D$SYSCONFDIR/enforcer/policy.toml" ] ||
    install -D -m 0644 etc/enforcer/policy.toml "$D$SYSCONFDIR/enforcer/policy.toml"
install -d "$D$UNITDIR"
for unit in enforcer.service enforcer-groups.service; do
    sed -e "s#/usr/local/sbin/enforcer#$PREFIX/sbin/enforcer#g" \
        -e "s#/etc/enforcer/policy.toml#$SYSCONFDIR/enforcer/policy.toml#g" \
        "lib/systemd/system/$unit" >"$D$UNITDIR/$unit"
    chmod 0644 "$D$UNITDIR/$unit"
done
# The system's man index, for the system's prefixes only.
case "$D$PREFIX" in
/usr | /usr/local) command -v mandb >/dev/null && mandb -q || true ;;
esac
case "$UNITDIR" in
/etc/systemd/system | /usr/lib/systemd/system | /lib/systemd/system)
    echo "installed; start with: systemctl daemon-reload && systemctl enable --now enforcer" ;;
*)
    echo "installed; the units are in $UNITDIR: systemctl link $UNITDIR/enforcer-groups.service $UNITDIR/enforcer.service && systemctl enable --now enforcer" ;;
esac
