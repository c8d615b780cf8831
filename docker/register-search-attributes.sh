#!/bin/sh
# Registers the custom search attributes that taskWorkflow keeps current
# (workflows/searchAttributes.ts), then exits 0. Idempotent: an attribute that already exists with
# the same type counts as registered, one with another type is an error.
#
# On a real server they must be registered through the operator API (start-dev's
# --search-attribute flags don't exist there). The API also ensures them when it starts, but a
# worker may run a workflow before that; this one-shot runs before either of them starts.
set -u

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
attempts="${REGISTER_ATTEMPTS:-90}" # 2 s apart

# The server answers (and auto-setup has created the namespace, which it does in the
# background once the frontend is up) when search-attribute list succeeds for it.
i=0
until temporal operator search-attribute list --namespace "$namespace" --address "$address" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge "$attempts" ]; then
    echo "register-search-attributes: namespace $namespace not reachable at $address, giving up" >&2
    exit 1
  fi
  echo "register-search-attributes: waiting for namespace $namespace at $address ($i/$attempts)"
  sleep 2
done

for spec in OpsStatus:Keyword OpsServices:KeywordList OpsAction:Keyword OpsIntent:KeywordList OpsAgent:Keyword; do
  name="${spec%%:*}"
  type="${spec#*:}"
  i=0
  while :; do
    if out=$(temporal operator search-attribute create --namespace "$namespace" --address "$address" \
      --name "$name" --type "$type" 2>&1); then
      echo "register-search-attributes: $name ($type) registered"
      break
    fi
    case "$out" in
      *"different type"*)
        echo "register-search-attributes: $out" >&2
        exit 1
        ;;
      *"already exists"* | *"AlreadyExists"*)
        echo "register-search-attributes: $name ($type) already registered"
        break
        ;;
    esac
    i=$((i + 1))
    if [ "$i" -ge "$attempts" ]; then
      echo "register-search-attributes: could not register $name: $out" >&2
      exit 1
    fi
    echo "register-search-attributes: retrying $name: $out"
    sleep 2
  done
done
