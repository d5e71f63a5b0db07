# Shared by scripts/demo.sh and scripts/test.sh: make sure the machine has what the
# platform needs, installing it when we are root and saying exactly what to run otherwise.

have_pg_server() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

need_packages() {
  # $@: Debian package names that are missing.
  [ "$#" -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $* (apt-get)…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; } || {
      echo "error: could not install $*; install them and run this again" >&2
      exit 1
    }
  else
    echo "error: this needs the Debian/Ubuntu packages: $*" >&2
    echo "       run: sudo apt-get install -y $*" >&2
    exit 1
  fi
}

ensure_postgres_binaries() {
  local missing=()
  have_pg_server || missing+=(postgresql)
  command -v pg_dump >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)
  need_packages "${missing[@]}"
}

# The preview role's tools: pdftoppm for PDF, LibreOffice for Word/WPS/Excel/PowerPoint,
# bubblewrap to sandbox them and prlimit to limit them. Without them the platform still runs
# and says at start which previews are unavailable.
preview_packages() {
  local missing=()
  command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
  command -v soffice >/dev/null 2>&1 || missing+=(libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui)
  command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  fc-list 2>/dev/null | grep -qiE "wqy|noto.*cjk|droid.*fallback" || missing+=(fonts-wqy-microhei)
  printf '%s\n' "${missing[@]}"
}

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/campus-target}"
