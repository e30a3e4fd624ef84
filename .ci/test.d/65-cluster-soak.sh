#!/usr/bin/env bash
# Issue 21 item 5, the short form (50 s, about a minute in all): redis-server + two release
# ringcast nodes, JSON pub/sub subscribers with history and presence on both, drop and
# unsubscribe churn with resumes, the redis-server killed and restarted mid-run. Fails on a lost
# copy the nodes' ringcast_cluster_gaps_total does not account for, a recovered:true resume that
# does not continue at offset+1, a crash, or a node's RSS over 128 MiB (loadtest/README.md,
# "Cluster soak"). The release binaries are built by 40-conformance and 60-soak already; the
# build below is then a no-op.
set -euo pipefail
bash loadtest/cluster-soak.sh 50
