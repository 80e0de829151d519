#!/bin/sh
# Creates the namespace jobgate uses, with a retention past the result TTL,
# and the search attributes jobs carry (jobgate registers them itself at
# start too, but one registered here is usable from the first job on: no
# search-attribute cache to wait out). Safe to run again: what exists is
# left as it is. docker-compose.yml's temporal-namespace job.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}" "${NAMESPACE_RETENTION:?}"

if ! temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" --retention "$NAMESPACE_RETENTION"
fi
for name in JobTenant JobKind JobState; do
  if ! temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" | grep -qw "$name"; then
    temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" --name "$name" --type Keyword
  fi
done
echo "temporal-namespace: namespace $NAMESPACE and jobgate's search attributes exist"
