"""Opens a results folder's index.html in headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) as a person would, and checks what they would see:
the table holds every row of runs*.csv; a click on the score's title (I', or a Table 2
folder's test error) sorts by it; typing a family in its filter box leaves exactly that family's
rows, and a threshold typed under the score exactly the rows past it; a run's page opens from its
link with every image loaded; and the browser console shows no errors on either page. Prints one line per check
and exits 1 if any fails. With --screenshot PATH, saves the index as a PNG.

Usage: python scripts/browser_check.py RESULTS_DIR FAMILY [--screenshot PATH]
"""
import csv
import glob
import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys


def rows_of(folder):
    rows = []
    for path in sorted(glob.glob(os.path.join(folder, "runs*.csv"))):
        with open(path, newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--allow-file-access-from-files", f"--user-data-dir={profile}",
                 "--window-size=1600,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def wait(driver, script, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(script)


def errors(driver):
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def main(folder, family, screenshot):
    folder = os.path.abspath(folder)
    rows = rows_of(folder)
    checks = []
    check = lambda name, ok, detail="": checks.append((name, bool(ok), detail))
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.get("file://" + os.path.join(folder, "index.html"))
            try:
                wait(driver, "return window.runsTable && document.querySelectorAll('.tabulator-row').length > 0")
            except TimeoutError:
                print(f"FAIL: the table never showed a row; console: {errors(driver)}")
                return False
            total = driver.execute_script("return window.runsTable.getDataCount()")
            check("every row of runs*.csv is in the table", total == len(rows), f"{total} of {len(rows)}")
            # Sort by the folder's score, a click on its column title: I' highest first (a second
            # click), or a Table 2 folder's test error lowest first.
            if any(r["i_prime"] for r in rows):
                title, field, clicks, best = "I'", "i_prime", 2, max
            else:
                title, field, clicks, best = "test error %", "test_error", 1, min
            head = driver.find_element(
                By.XPATH, f"//div[contains(@class,'tabulator-col-title') and text()=\"{title}\"]")
            for _ in range(clicks):
                head.click()
            time.sleep(0.3)
            shown = driver.execute_script(
                f"return window.runsTable.getRows('active').map(r => r.getData().{field})")
            scored = [float(r[field]) for r in rows if r[field]]
            check(f"a click on {title} sorts the rows by it ({best.__name__} first)",
                  shown and shown[0] == best(scored), f"first {shown[:1]}, {best.__name__} {best(scored):.6f}")
            # Filter to one family through its filter box.
            box = driver.find_element(
                By.XPATH, "//div[@tabulator-field='family']//input")
            box.send_keys(family)
            time.sleep(0.5)
            active = driver.execute_script("return window.runsTable.getDataCount('active')")
            want = sum(r["family"] == family for r in rows)
            families = set(driver.execute_script(
                "return window.runsTable.getRows('active').map(r => r.getData().family)"))
            check(f"the family filter leaves exactly the {family} rows of runs*.csv",
                  active == want and families == {family}, f"{active} shown, {want} in runs.csv")
            # A number filter, as typed into the score's box after clearing the family's.
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(Keys.BACKSPACE)
            op, cut = (">", 0.5) if field == "i_prime" else ("<", 50.0)
            driver.find_element(By.XPATH, f"//div[@tabulator-field='{field}']//input").send_keys(f"{op}{cut}")
            time.sleep(0.5)
            active = driver.execute_script("return window.runsTable.getDataCount('active')")
            want = sum(bool(r[field]) and (float(r[field]) > cut if op == ">" else float(r[field]) < cut)
                       for r in rows)
            check(f"typing {op}{cut} under {title} leaves exactly those rows of runs*.csv", active == want,
                  f"{active} shown, {want} in runs.csv")
            # Back to the family's rows (the run page below is one of them).
            score_box = driver.find_element(By.XPATH, f"//div[@tabulator-field='{field}']//input")
            score_box.send_keys(Keys.CONTROL, "a")
            score_box.send_keys(Keys.BACKSPACE)
            box.send_keys(family)
            time.sleep(0.5)
            figures = driver.execute_script(
                "return [...document.querySelectorAll('figure img')].map(i => [i.src, i.complete && i.naturalWidth > 0])")
            check("every figure of the index loaded", figures and all(ok for _, ok in figures),
                  f"{sum(ok for _, ok in figures)} of {len(figures)}")
            thumbs = driver.execute_script(
                "return [...document.querySelectorAll('img.thumb')].map(i => i.complete && i.naturalWidth > 0)")
            check("the visible rows' sample thumbnails loaded", thumbs and all(thumbs), f"{len(thumbs)} shown")
            if screenshot:
                driver.save_screenshot(screenshot)
            errs = errors(driver)  # the log is drained by reading it: read once
            check("no console errors on the index", not errs, str(errs))
            # A run's page, from its link.
            link = driver.find_element(By.CSS_SELECTOR, ".tabulator-row a")
            run_id = link.text
            link.click()
            wait(driver, "return document.readyState === 'complete' && document.title.length > 0")
            check("a run's link opens its page", driver.title == run_id, driver.title)
            images = driver.execute_script(
                "return [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
            check("every image of the run's page loaded", images and all(ok for _, ok in images),
                  str(images))
            curves = driver.execute_script("return document.querySelectorAll('#curves svg polyline').length")
            check("the run's loss curves are drawn", curves >= 2, f"{curves} series")
            errs = errors(driver)
            check("no console errors on the run's page", not errs, str(errs))
        finally:
            driver.quit()
    for name, ok, detail in checks:
        print(f"{'pass' if ok else 'FAIL'}: {name} ({detail})")
    print(f"{sum(ok for _, ok, _ in checks)} passed, {sum(not ok for _, ok, _ in checks)} failed")
    return all(ok for _, ok, _ in checks)


if __name__ == "__main__":
    args = sys.argv[1:]
    shot = None
    if "--screenshot" in args:
        i = args.index("--screenshot")
        shot = args[i + 1]
        del args[i:i + 2]
    sys.exit(0 if main(args[0], args[1], shot) else 1)
