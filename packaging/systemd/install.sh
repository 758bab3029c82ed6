#!/usr/bin/env bash
# Install (or upgrade) batchd as a systemd service. Run as root; safe to run again.
#
#   sudo packaging/systemd/install.sh                 # install this source tree
#   sudo packaging/systemd/install.sh batchd-X.whl    # or a wheel, or any pip requirement
#
# What it does, leaving what already exists in place (except the program and the unit):
#   user and group batchd (system account, no login)
#   /opt/batchd          a virtualenv with batchd installed (upgraded on every run)
#   /usr/local/bin/batchd -> /opt/batchd/bin/batchd
#   /etc/batchd/         config.toml and batchd.env examples (only if absent), plugins/
#   /srv/batchd/inbox    where people in group batchd drop files (setgid, default ACLs)
#   /srv/batchd/outbox   the results, readable by group batchd
#   /etc/systemd/system/batchd.service, then daemon-reload (and a restart if it runs)
# The API key is not touched: the script says how to put it in place.
#
# Environment: PYTHON (default python3, >= 3.11). DESTDIR=/some/folder installs under
# that folder instead of / to try the script out: no users, owners or systemctl then.
set -euo pipefail

PYTHON=${PYTHON:-python3}
DESTDIR=${DESTDIR:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE=${1:-$(cd "$HERE/../.." && pwd)}

VENV=/opt/batchd
ETC=/etc/batchd
SRV=/srv/batchd
UNIT=/etc/systemd/system/batchd.service

umask 022  # the virtualenv must be readable by the service user whatever root's umask is

say() { printf 'install.sh: %s\n' "$*"; }
real() { [[ -z $DESTDIR ]]; }

if real && [[ $(id -u) -ne 0 ]]; then
  say "run me as root (or set DESTDIR to try me out)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "$PYTHON is missing or older than 3.11; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

# Owners only on a real install (with DESTDIR the batchd user may not exist).
dir() {  # dir MODE OWNER:GROUP PATH
  mkdir -p "$DESTDIR$3"
  if real; then chown "$2" "$DESTDIR$3"; fi
  chmod "$1" "$DESTDIR$3"
}
file_if_absent() {  # file_if_absent MODE OWNER:GROUP SOURCE PATH
  if [[ -e $DESTDIR$4 ]]; then
    say "kept $4 (already there; the shipped example is $3)"
    return
  fi
  install -m "$1" "$3" "$DESTDIR$4"
  if real; then chown "$2" "$DESTDIR$4"; fi
  say "wrote $4"
}

# 1. The account. No home, no shell; the state lives in /var/lib/batchd (StateDirectory=).
if real; then
  getent group batchd >/dev/null || groupadd --system batchd
  getent passwd batchd >/dev/null || useradd --system --gid batchd --no-create-home \
    --home-dir /var/lib/batchd --shell /usr/sbin/nologin --comment "batchd service" batchd
fi

# 2. The program, in its own virtualenv. A reinstall picks up a changed source tree
#    even when the version number did not change.
[[ -x $DESTDIR$VENV/bin/python ]] || "$PYTHON" -m venv "$DESTDIR$VENV"
if [[ -d $SOURCE ]]; then
  # Build from a copy: a build in the tree would leave root-owned files in the checkout.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  tar -C "$SOURCE" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
    --exclude='*.egg-info' --exclude=./inbox --exclude=./outbox -cf - . | tar -C "$work" -xf -
  SOURCE=$work
fi
if [[ -e $SOURCE ]]; then
  "$DESTDIR$VENV/bin/python" -m pip install --quiet --upgrade "$SOURCE"
  "$DESTDIR$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$SOURCE"
else
  "$DESTDIR$VENV/bin/python" -m pip install --quiet --upgrade "$SOURCE"
fi
mkdir -p "$DESTDIR/usr/local/bin"
ln -sfn "$VENV/bin/batchd" "$DESTDIR/usr/local/bin/batchd"
say "installed $("$DESTDIR$VENV/bin/batchd" --version) into $VENV"

# 3. Configuration: root-owned, readable by group batchd, never writable by the service.
dir 0750 root:batchd "$ETC"
dir 0750 root:batchd "$ETC/plugins"
file_if_absent 0640 root:batchd "$HERE/config.toml" "$ETC/config.toml"
file_if_absent 0640 root:batchd "$HERE/batchd.env" "$ETC/batchd.env"

# 4. The shared folders. /srv/batchd stays root's, so the service (which may write only
#    below it) can write nothing but inbox/ and outbox/. The inbox is setgid batchd, and
#    its default ACLs give group batchd read and write on everything people put there,
#    whatever their umask, so that batchd can read each file and move it out.
dir 0755 root:root "$SRV"
dir 2770 batchd:batchd "$SRV/inbox"
dir 2750 batchd:batchd "$SRV/outbox"
if real; then
  if command -v setfacl >/dev/null; then
    setfacl -m g:batchd:rwx,d:u::rwx,d:g::rwx,d:g:batchd:rwx,d:o::- "$SRV/inbox"
  else
    say "setfacl not found (package acl): people must drop files with umask 002 or 007," \
        "or install acl and run me again"
  fi
fi

# 5. The unit. Local changes belong in a drop-in (systemctl edit batchd), not in this file.
mkdir -p "$(dirname "$DESTDIR$UNIT")"
install -m 0644 "$HERE/batchd.service" "$DESTDIR$UNIT"
say "wrote $UNIT"
if real && [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
  if systemctl is-active --quiet batchd; then
    systemctl restart batchd  # in-flight batches resume where they were
    say "restarted the running batchd"
  fi
fi

# 6. What is left to the admin.
cat <<EOF

Next steps:
  1. The API key (read by systemd, handed to batchd with LoadCredential=):
       ( umask 077; read -rsp 'Anthropic API key: ' k; echo; printf '%s\n' "\$k" > $ETC/anthropic_api_key )
  2. Review $ETC/config.toml (and $ETC/batchd.env), then:
       systemctl enable --now batchd
       systemctl status batchd; journalctl -u batchd -f
  3. Let people drop documents:  usermod -aG batchd NAME   (they log in again)
       inbox: $SRV/inbox   results: $SRV/outbox
EOF
if [[ ! -e $DESTDIR$ETC/anthropic_api_key ]]; then
  say "note: $ETC/anthropic_api_key is missing; batchd will not start without it"
fi
