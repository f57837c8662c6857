"""Run by every Python of the checkout's commands (hacking/env.sh puts this directory on PYTHONPATH)."""
import ansiballz_scan_cache
import zipimport_bytecode_cache

zipimport_bytecode_cache.install()
ansiballz_scan_cache.install()
