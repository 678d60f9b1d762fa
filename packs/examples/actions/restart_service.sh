#!/bin/sh
# Restarts a systemd service. The action exports its parameters as ATTUNE_PARAM_SERVICE and
# ATTUNE_PARAM_DRY_RUN (meta.env_parameters); they also arrive as JSON on stdin, e.g.
#   {"service": "nginx", "dry_run": true}
# which is read when the variables are not set (running the script by hand). `service` is
# restricted to [A-Za-z0-9_.@-] by the action's parameters. JSON printed on stdout is the result.
set -eu
params=$(cat)
service=${ATTUNE_PARAM_SERVICE:-$(printf '%s' "$params" | sed -n 's/.*"service"[[:space:]]*:[[:space:]]*"\([A-Za-z0-9_.@-]*\)".*/\1/p')}
dry_run=${ATTUNE_PARAM_DRY_RUN:-}
if [ -z "$dry_run" ]; then
  case "$params" in
    *'"dry_run":false'* | *'"dry_run": false'*) dry_run=false ;;
    *) dry_run=true ;;
  esac
fi
if [ -z "$service" ]; then
  echo "no service given" >&2
  exit 2
fi
if [ "$dry_run" = true ]; then
  printf '{"service": "%s", "restarted": false, "dry_run": true, "would_run": "systemctl restart %s"}\n' "$service" "$service"
  exit 0
fi
if ! command -v systemctl >/dev/null 2>&1; then
  echo "systemctl is not available on this worker" >&2
  exit 1
fi
systemctl restart "$service"
printf '{"service": "%s", "restarted": true, "dry_run": false}\n' "$service"
