// render_cluster_metrics: the service's counters, then one sample per node and figure.
#include "allocator/cluster_metrics.h"

#include "allocator/prometheus.h"

namespace confab::allocator {

std::string render_cluster_metrics(ClusterService& service) {
  std::string text;
  const ServiceStats s = service.stats();
  const ClusterStats c = service.cluster_stats();
  metric(text, "confab_conferences", "gauge", "Conferences in the cluster registry.", double(s.conferences));
  metric(text, "confab_participants", "gauge", "Participants in the cluster registry's records.",
         double(s.participants));
  metric(text, "confab_conferences_created_total", "counter", "Conferences this instance created.",
         double(s.conferences_created));
  metric(text, "confab_conferences_destroyed_total", "counter", "Conferences this instance ended.",
         double(s.conferences_destroyed));
  metric(text, "confab_participants_joined_total", "counter", "Participants this instance joined.",
         double(s.participants_joined));
  metric(text, "confab_participants_left_total", "counter", "Participants this instance took out.",
         double(s.participants_left));
  metric(text, "confab_requests_refused_total", "counter",
         "Requests refused with 503 (capacity, a node or etcd not answering).", double(s.requests_refused));
  metric(text, "confab_conferences_failed_over_total", "counter",
         "Conferences this instance re-created on another node after theirs died.", double(c.conferences_failed_over));
  metric(text, "confab_failover_errors_total", "counter",
         "Conference moves that found no node to take them (retried).", double(c.failover_errors));
  metric(text, "confab_node_retries_total", "counter", "Creates passed to the next node because one did not answer.",
         double(c.node_retries));
  metric(text, "confab_etcd_errors_total", "counter", "Requests answered 503 because etcd did not answer.",
         double(c.etcd_errors));
  metric(text, "confab_bad_records_total", "counter", "Registry values that did not decode (ignored).",
         double(c.bad_records));
  metric(text, "confab_webhook_failures_total", "counter", "Failover webhooks not answered 2xx.",
         double(c.webhook_failures));
  metric(text, "confab_record_writes_total", "counter", "Conference records created and deleted in etcd.",
         double(c.record_writes.writes));
  metric(text, "confab_record_transactions_total", "counter",
         "etcd transactions that wrote them (several writes per transaction under load).",
         double(c.record_writes.transactions));
  std::vector<MetricSample> stress, conferences, participants, state;
  if (auto nodes = service.nodes()) {
    for (const NodeInfo& node : *nodes) {
      const std::string label = "node=\"" + node.registration.id + "\"";
      stress.push_back({label, node.load.stress});
      conferences.push_back({label, double(node.load.conferences)});
      participants.push_back({label, double(node.load.participants)});
      state.push_back({label + ",state=\"" + std::string(to_string(node.state)) + "\"", 1});
    }
  }
  metric_family(text, "confab_node_stress", "gauge", "Each node's published stress (worker CPU per declared core).",
                stress);
  metric_family(text, "confab_node_conferences", "gauge", "Conferences each node reports hosting.", conferences);
  metric_family(text, "confab_node_participants", "gauge", "Participants each node reports hosting.", participants);
  metric_family(text, "confab_node_state", "gauge", "1 for each node's state (up, draining, drained).", state);
  return text;
}

}  // namespace confab::allocator
