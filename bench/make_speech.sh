#!/bin/sh
# Writes the audio load generator's speech: ~20 s of varied English sentences, 48 kHz mono 16-bit WAV.
# Usage: bench/make_speech.sh OUT.wav   (installs espeak-ng and sox with apt-get when missing)
set -eu

out=${1:?usage: $0 OUT.wav}

if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0: espeak-ng and sox are missing; install them (apt-get install espeak-ng sox) or run as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends espeak-ng sox >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Several voices, speeds and pitches so the talkers of a conference do not sound alike, and short
# pauses between sentences as in real talk (the encoder and the level switch between speech and
# near-silence). Each line: voice speed(wpm) pitch(0-99) text.
n=0
while IFS='|' read -r voice speed pitch text; do
  n=$((n + 1))
  espeak-ng -v "$voice" -s "$speed" -p "$pitch" -w "$tmp/s$n.wav" "$text"
  # 250 ms of silence after each sentence, at the synthesiser's rate (22050 Hz mono).
  sox -n -r 22050 -c 1 -b 16 "$tmp/p$n.wav" trim 0 0.25
done <<'SENTENCES'
en-us|175|50|Good morning everyone, can you all hear me?
en-gb|165|40|The quarterly numbers came in slightly above the forecast.
en-us|185|65|I think we should move the release by one week.
en-gb|170|30|Could you share your screen for a moment, please?
en-us|175|55|The weather in the mountains was wonderful.
en-gb|160|45|Please send your comments before Thursday.
en-us|180|70|Sorry, I was on mute. Yes, I agree, and I can take that.
SENTENCES

files=""
i=1
while [ "$i" -le "$n" ]; do
  files="$files $tmp/s$i.wav $tmp/p$i.wav"
  i=$((i + 1))
done
# shellcheck disable=SC2086
sox $files -r 48000 -c 1 -b 16 -e signed-integer "$out" norm -3
echo "$out: $(soxi -D "$out") s, $(soxi -r "$out") Hz, $(soxi -c "$out") channel"
