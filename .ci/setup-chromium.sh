# Sourced by .ci/run: the browser test of the Dagster UI drives Debian's Chromium with Playwright.
# Playwright's own browser download is never used (`playwright install` is not run); the test launches
# /usr/bin/chromium through `executable_path`.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt_get=(apt-get)
  else
    apt_get=(sudo apt-get)
  fi
  echo "installing Debian chromium for the browser test (ml_platform_tests/ui)"
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends chromium
fi
/usr/bin/chromium --version
