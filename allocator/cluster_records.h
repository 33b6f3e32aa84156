// Cluster records: the JSON a node and the allocators keep in etcd (a node's registration and load,
// a conference's record), encoded and decoded strictly: what another process wrote is input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "allocator/api_types.h"

namespace confab::allocator {

// Where a conference lives in the cluster and what re-creates it elsewhere on failover.
struct ConferenceRecord {
  uint64_t id = 0;                // cluster-wide, >= 1
  std::string node;               // the node hosting it (NodeRegistration::id)
  ConferenceSettings settings;    // stored in the REST create body's shape
  std::vector<std::pair<uint64_t, std::string>> participants;  // id, name
  uint64_t created_ms = 0;        // Unix time of its creation, milliseconds
};

// A node's records are small; anything larger is not one. A conference record holds up to
// kMaxParticipantsLimit names of kMaxNameLength bytes, which JSON escaping may make six times longer.
constexpr size_t kMaxNodeRecordBytes = 16 * 1024;
constexpr size_t kMaxConferenceRecordBytes = 1024 * 1024;
constexpr size_t kMaxNodeIdLength = 64;
constexpr size_t kMaxLabels = 32;
constexpr size_t kMaxLabelLength = 64;
constexpr double kMaxNodeStress = 1000;     // beyond this a figure is a bug, not a load
constexpr double kMaxCapacityCores = 4096;
constexpr double kMaxPacketRate = 1e9;      // packets/s: a 100 Gbit/s link of minimal datagrams is ~1.5e8

// Node IDs and label keys: [A-Za-z0-9._-], 1..64 characters (label values may be empty).
bool valid_node_id(std::string_view id);
// The conference ID at the end of a record's key (".../conferences/<id>"): decimal, not 0.
std::optional<uint64_t> parse_conference_id(std::string_view text);

// Encoders take what this process built and always produce what the decoders accept (a name with
// invalid UTF-8 has its bad bytes replaced by U+FFFD; NaN or infinite figures encode as null,
// which decoders refuse: such a report is a bug to surface, not to publish as a number).
std::string encode(const NodeRegistration& registration);
std::string encode(const NodeLoadReport& load);
std::string encode(const ConferenceRecord& record);

// Decoders refuse (502 BAD_RECORD, the message naming the record and field) anything but a JSON
// object with every field present, well typed and in range. Unknown fields are ignored, so that a
// newer node may add one during a rolling upgrade; the settings object is the REST create body and
// is held to that parser's rules (unknown fields refused).
ApiResult<NodeRegistration> decode_node_registration(std::string_view json);
ApiResult<NodeLoadReport> decode_node_load_report(std::string_view json);
ApiResult<ConferenceRecord> decode_conference_record(std::string_view json);

}  // namespace confab::allocator
