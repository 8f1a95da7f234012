"""Writes to rooms' domain models. `check_*` validates and authorises; `do_*` changes and emits."""
