#!/usr/bin/env bash
# Print the path of chromedriver (Debian's chromium-driver, matching Debian's chromium), installing
# chromium and chromium-driver with apt-get if either is absent. The browser tests drive this pair;
# nothing is downloaded by Selenium itself. Exit 1 (with a reason on stderr) only when installation
# is impossible.
exec bash "$(dirname "$0")/ensure_apt.sh" ensure_chromium "chromedriver chromium" "chromium chromium-driver"
