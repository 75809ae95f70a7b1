#!/bin/sh
# Starts the compose nats-server. With NATS_ROUTE_PASSWORD set it is node NATS_NODE (n1, n2, n3)
# of a 3-node JetStream cluster with the services nats, nats-2 and nats-3 (profile `cluster`,
# docs/decisions/034-clustered-log.md); routes authenticate with that password. Unset: one server
# and no route listener at all.
set -eu
node="${NATS_NODE:-n1}"
if [ -z "${NATS_ROUTE_PASSWORD:-}" ]; then
  if [ "$node" != n1 ]; then
    echo "nats $node: set NATS_ROUTE_PASSWORD to run the cluster profile" >&2
    exit 1
  fi
  exec nats-server -c /etc/nats/nats.conf --name "$node"
fi
routes=""
for peer in nats nats-2 nats-3; do
  [ "$peer" = "${NATS_SERVICE:-nats}" ] && continue
  routes="${routes:+$routes,}nats-route://route:${NATS_ROUTE_PASSWORD}@${peer}:6222"
done
exec nats-server -c /etc/nats/nats.conf --name "$node" --cluster_name aaltohub \
  --cluster "nats://route:${NATS_ROUTE_PASSWORD}@0.0.0.0:6222" --routes "$routes"
