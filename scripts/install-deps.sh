#!/usr/bin/env bash
# Installs the Debian 12 packages Confab builds, tests and benchmarks with. Idempotent: prints
# nothing and changes nothing when everything is already installed. Uses sudo when not root.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config clang libfuzzer-14-dev ccache
  # media path
  liburing-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libx264-dev libopus-dev libspeexdsp-dev
  # allocator, logging, command line, control plane (HTTP server, JSON)
  libjemalloc-dev libspdlog-dev libcli11-dev libcpp-httplib-dev nlohmann-json3-dev
  # cluster mode: etcd's gRPC API (stubs generated from allocator/proto/ at build time)
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # call router: directory store
  libsqlite3-dev
  # call router: SIP plugin (sofia-sip NUA) and the SIP test endpoints (sipp)
  libsofia-sip-ua-dev sip-tester
  # call router: XMPP plugin (libstrophe), and the Prosody server and slixmpp bots its tests run
  libstrophe-dev prosody python3-slixmpp
  # cluster mode: the etcd registry the allocator and the nodes share (tests start their own member)
  etcd-server etcd-client curl
  # cluster tests: libfaketime moves a daemon's wall clock (the clock-jump test)
  faketime
  # tests and benchmarks; ffmpeg is the real client the integration tests drive
  libgtest-dev libgmock-dev libbenchmark-dev ffmpeg valgrind
  # tests: GStreamer, a real RTP client that does RFC 4585 generic NACK (ffmpeg does not), proves
  # the composite's retransmissions (rtpbin, udpsrc/udpsink, rtph264depay, avdec_h264, videoscale)
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
