#!/usr/bin/env bash
# Opens DIR/report.html (what `kinetick report --out DIR` wrote) in headless Chromium and saves a
# screenshot of its top as a PNG, to look at a report without a browser at hand.
#
#   scripts/report-screenshot.sh DIR [PNG]     PNG defaults to DIR/report.png
#
# REPORT_SCREENSHOT_SIZE sets the window as WIDTH,HEIGHT (default 1400,3000: the page is cut at
# that height). Needs Chromium (the Debian package `chromium`); as root with apt-get, it is
# installed when missing. The page loads nothing from the network, and Chromium is kept from
# reaching out on its own (no background networking, component updates or sync) with a new
# profile each run.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [PNG]" >&2
  exit 2
fi
dir=$1
page="$dir/report.html"
png=${2:-"$dir/report.png"}
size=${REPORT_SCREENSHOT_SIZE:-1400,3000}

if [ ! -f "$page" ]; then
  echo "report-screenshot: no $page: run kinetick report --out $dir first" >&2
  exit 1
fi

chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "Installing chromium (Debian package) ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
    chromium=$(command -v chromium)
  else
    echo "report-screenshot: Chromium not found: install the Debian package chromium" >&2
    exit 1
  fi
fi

profile=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$profile" "$log"' EXIT
page_url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
png_abs="$(cd "$(dirname "$png")" && pwd)/$(basename "$png")"
rm -f "$png_abs"

if ! "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --window-size="$size" \
    --screenshot="$png_abs" "$page_url" > "$log" 2>&1 || [ ! -s "$png_abs" ]; then
  cat "$log" >&2
  echo "report-screenshot: Chromium wrote no screenshot (its output above)" >&2
  exit 1
fi
echo "report-screenshot: $png"
