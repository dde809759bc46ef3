# shellcheck shell=bash
# Sourced by the CI scripts that build Debian roots (homeassistant.sh, arm.sh).

# A command in ROOT with a clean environment: the host's PIP_FIND_LINKS, PIP_CERT etc. name host paths.
clean_chroot() {  # clean_chroot ROOT CMD...
  local root=$1; shift
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    chroot "$root" "$@"
}

# NOTE: this machine reaches PyPI through a proxy whose CA only the host trusts (a bare root's pip
# fails with "self-signed certificate in certificate chain"): hand the root the host's extra CAs.
trust_host_cas() {  # trust_host_cas ROOT
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"
    clean_chroot "$1" update-ca-certificates >/dev/null 2>&1
  fi
}
