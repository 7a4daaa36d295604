#!/bin/sh
# A client-go exec credential plugin for tests (tests/kubeconfig_test.ts). Everything it does is
# driven by files in $KPD_PLUGIN_DIR, which the kubeconfig's `env` sets:
#   runs     one line appended per run: the KUBERNETES_EXEC_INFO it was given
#   mode     "token" (default), "cert", "fail" (exit 3) or "garbage" (not JSON)
#   token    the token it hands out (mode token)
#   crt key  the client certificate and key it hands out (mode cert), PEM
#   expires  when present, its content is the expirationTimestamp
# Its one argument is the ExecCredential apiVersion to answer with.
set -eu
dir="$KPD_PLUGIN_DIR"
printf '%s\n' "${KUBERNETES_EXEC_INFO:-}" >>"$dir/runs"
mode=$(cat "$dir/mode" 2>/dev/null || echo token)
exp=""
if [ -f "$dir/expires" ]; then exp=",\"expirationTimestamp\":\"$(cat "$dir/expires")\""; fi
case "$mode" in
fail)
  echo "exec_plugin: not logged in; run exec_plugin login" >&2
  exit 3
  ;;
garbage)
  echo "this is not an ExecCredential"
  ;;
cert)
  # JSON strings need the PEM's newlines escaped.
  crt=$(awk '{printf "%s\\n", $0}' "$dir/crt")
  key=$(awk '{printf "%s\\n", $0}' "$dir/key")
  printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"clientCertificateData":"%s","clientKeyData":"%s"%s}}\n' \
    "$1" "$crt" "$key" "$exp"
  ;;
*)
  printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"%s"%s}}\n' \
    "$1" "$(cat "$dir/token")" "$exp"
  ;;
esac
