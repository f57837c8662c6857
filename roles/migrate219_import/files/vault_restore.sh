# Run in the restore pod: sh -c "$(cat vault_restore.sh)" vault-restore <mount path> <run id>, the archive on stdin.
# 3.x's own files are moved once into .pre-migrate-219-<run id> (a resumed restore keeps them, not its own first
# attempt); everything else is cleared, then the archive is unpacked as the pod's user (not the box's owners).
set -eu
cd "$1"
kept=".pre-migrate-219-$2"
if [ ! -d "$kept" ]; then
  mkdir -p "$kept.partial"
  for entry in * .[!.]* ..?*; do
    case "$entry" in .pre-migrate-219-*) continue ;; esac
    if [ -e "$entry" ] || [ -L "$entry" ]; then mv "$entry" "$kept.partial/"; fi
  done
  mv "$kept.partial" "$kept"
fi
for entry in * .[!.]* ..?*; do
  case "$entry" in .pre-migrate-219-*) continue ;; esac
  if [ -e "$entry" ] || [ -L "$entry" ]; then rm -rf "$entry"; fi
done
tar -xzof -
