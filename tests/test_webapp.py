"""The Age Calculator end to end on this machine: a model trained on the real data behind a local endpoint, the
page and its API served by the local proxy, the system tests against that API, and the page in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
from pathlib import Path

import boto3
import pytest

from mlops_core.aws import Clients
from mlops_core.local.webapp_server import WebappServer
from mlops_core.sagemaker.endpoints import delete_endpoint, deploy_model
from mlops_core.webapp.system_tests import run_system_tests
from tests.conftest import REGION
from tests.fakes import IMAGE_URI, ROLE_ARN
from tests.test_container import run_app, write_lines
from workflows.data import abalone_data

REPO = Path(__file__).resolve().parents[1]
ARTEFACTS = REPO / "test-artefacts"
BUCKET = "webapp-models"
ENDPOINT = "abalone"
ROWS = [line.split(",") for line in abalone_data().read_text().split()]
ROW = ROWS[3]  # M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155 with 10 rings: a typical adult
PHONE = {"width": 390, "height": 1150, "pixelRatio": 1.0}  # a phone-width screen
HYPERPARAMETERS = {"epochs": "25", "networks": "1", "patience": "5", "batch_size": "32"}


def train_on_the_real_data(root: Path) -> Path:
    """preprocess -> train (a short run of the shipped recipe) through app.py; the model as model.tar.gz."""
    write_lines(root / "processing/input/data/abalone.csv", [",".join(row) for row in ROWS])
    assert run_app("preprocess", root).returncode == 0
    for name in ("training.csv", "validation.csv"):
        shutil.copy(root / "processing/output/training" / name, (root / "input/data/training").mkdir(
            parents=True, exist_ok=True) or root / "input/data/training" / name)
    write_lines(root / "input/config/hyperparameters.json", [json.dumps(HYPERPARAMETERS)])
    trained = run_app("train", root)
    assert trained.returncode == 0, trained.stderr[-2000:]
    archive = root / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in (root / "model").iterdir():
            tar.add(path, arcname=path.name)
    return archive


@pytest.fixture(scope="module")
def calculator(local_aws, tmp_path_factory):
    """The page and its API on 127.0.0.1 in front of a local endpoint serving a model trained on the real data."""
    local_aws.reset()
    local_aws.gateway.container, local_aws.gateway.container_env, local_aws.gateway.engine = None, {}, "process"
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    clients = Clients(session, endpoint_url=local_aws.endpoint_url)
    started = time.monotonic()
    archive = train_on_the_real_data(tmp_path_factory.mktemp("opt_ml"))
    clients.s3.create_bucket(Bucket=BUCKET)
    clients.s3.upload_file(str(archive), BUCKET, "abalone/model.tar.gz")
    deploy_model(ENDPOINT, IMAGE_URI, f"s3://{BUCKET}/abalone/model.tar.gz", ROLE_ARN, clients=clients)
    print(f"trained and deployed in {time.monotonic() - started:.1f} s")
    with WebappServer(ENDPOINT, clients=clients) as server:
        yield server
    delete_endpoint(ENDPOINT, clients=clients)
    local_aws.stop_processes()


@pytest.mark.slow
def test_system_tests_pass_against_the_local_api(calculator):
    checks = run_system_tests(calculator.url, ROWS[:: len(ROWS) // 10][:10])
    failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    assert not failed, "\n".join(failed)
    assert len(checks) == 17


@pytest.mark.slow
def test_the_api_contract_of_the_local_proxy(calculator):
    from mlops_core.webapp.system_tests import post

    url = calculator.url + "predict"
    status, answer = post(url, json.dumps({"instances": [ROW[:8], ROW[:8]]}).encode(), "application/json")
    assert status == 200 and len(json.loads(answer)["predictions"]) == 2
    status, answer = post(url, b"M,0.44,0.365,0.125,0.516,0.2155,0.114,x", "text/csv")
    assert status == 400 and json.loads(answer)["field"] == "shell_weight"  # the container's own message
    assert post(url, b"x" * (64 * 1024 + 1), "text/csv")[0] == 413
    assert post(calculator.url + "other", b"M", "text/csv")[0] == 404


def chromium(tmp_path: Path):
    """Headless Chromium driven by Selenium with the system's chromedriver (Selenium Manager never runs)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium") or "/usr/bin/chromium", "/usr/bin/chromedriver"
    if not (Path(browser).exists() and Path(driver).exists()):
        message = "chromium and chromedriver are missing: run bin/browser"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def fill(browser, row: list[str]) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, f'input[name="sex"][value="{row[0]}"]').click()
    for name, value in zip(("length", "diameter", "height", "whole_weight", "shucked_weight", "viscera_weight",
                            "shell_weight"), row[1:8], strict=True):
        field = browser.find_element(By.ID, name)
        field.clear()
        field.send_keys(value)
    browser.find_element(By.ID, "submit").click()


@pytest.mark.slow
def test_the_page_in_a_real_browser_predicts_an_age_and_explains_a_bad_value(calculator, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as visible
    from selenium.webdriver.support.ui import WebDriverWait

    started = time.monotonic()
    browser = chromium(tmp_path)
    try:
        browser.get(calculator.url)
        assert browser.execute_script("return window.innerWidth") == PHONE["width"]
        assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE["width"], \
            "nothing may stick out sideways on a phone"
        assert browser.find_element(By.CSS_SELECTOR, 'label[for="length"]').text == "Length"  # labelled inputs
        assert browser.find_element(By.ID, "length").get_attribute("aria-describedby") == "length-hint length-message"
        fill(browser, ROW)
        result = WebDriverWait(browser, 20).until(visible.visibility_of_element_located((By.ID, "result")))
        rings, age = (float(browser.find_element(By.ID, key).text) for key in ("rings", "age"))
        label = float(ROW[8])
        print(f"row {','.join(ROW[:8])}: predicted rings {rings}, age {age}; label {label:g} rings")
        assert abs(rings - label) <= 3, f"predicted {rings} rings for a row labelled {label:g}"
        assert age == pytest.approx(rings + 1.5, abs=0.1) and result.is_displayed()
        ARTEFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTEFACTS / "age-calculator.png"))

        fill(browser, [ROW[0], "2.5", *ROW[2:8]])  # a length of 500 mm: no abalone is that long
        message = browser.find_element(By.ID, "length-message")
        WebDriverWait(browser, 5).until(lambda _: message.text)
        assert message.text == "Length must be between 0.01 and 1."
        assert browser.find_element(By.ID, "length").get_attribute("aria-invalid") == "true"
        assert not browser.find_element(By.ID, "result").is_displayed()
        browser.save_screenshot(str(ARTEFACTS / "age-calculator-bad-value.png"))

        with WebappServer("no-such-endpoint", clients=calculator.clients) as broken:  # the API refuses
            browser.get(broken.url)
            fill(browser, ROW)
            error = WebDriverWait(browser, 20).until(visible.visibility_of_element_located((By.ID, "error")))
            assert error.text.startswith("The calculator refused the measurements (400): ")
            assert "no-such-endpoint" in error.text and not browser.find_element(By.ID, "result").is_displayed()
            browser.save_screenshot(str(ARTEFACTS / "age-calculator-refused.png"))
        print(f"screenshots in {ARTEFACTS}; browser part {time.monotonic() - started:.1f} s")
    finally:
        browser.quit()


def test_keep_serving_prints_the_page_url_and_serves_it_until_ctrl_c(monkeypatch):
    """bin/demo --keep-serving: the page's URL is printed and answers while the demo waits for Ctrl-C."""
    import urllib.request
    from types import SimpleNamespace

    from workflows import local_release

    lines: list[str] = []

    def interrupt(_seconds):
        url = next(line for line in lines if line.startswith("Age Calculator: open ")).split()[3]
        with urllib.request.urlopen(url, timeout=10) as page:
            assert b"Abalone Age Calculator" in page.read()
        with urllib.request.urlopen(url + "config.js", timeout=10) as config:
            assert config.read() == b'window.AGE_CALCULATOR_CONFIG = {"apiUrl": ""};\n'
        raise KeyboardInterrupt

    monkeypatch.setattr(local_release.time, "sleep", interrupt)
    aws = SimpleNamespace(runtime=SimpleNamespace(read=lambda kind, name: {"port": 8080}),
                          endpoint_url="http://127.0.0.1:1")
    local_release.serve_until_interrupted(aws, ENDPOINT, lines.append)
    assert lines[-1] == "stopping"
