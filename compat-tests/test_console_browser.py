"""The web console in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium with the system chromedriver (nothing downloaded).

A broker process is filled by a real client (confluent-kafka); the test then uses the console
only by clicking visible links: Topics -> the topic -> Messages -> a partition, where it finds
a known record's value; Consumer Groups -> the group, where the lag is a plain number; then
the group consumes and the same page, not reloaded, shows the new lag within a bounded wait
(the page polls).  Screenshots of each step are kept under the test's tmp dir in
``artifacts/``.  Locally a missing browser skips; with CI=true it fails (clients.py).
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import missing
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

# Bounded waits: a page element to appear, and a lag change to show without a reload (the
# group page polls every 2 s).
PAGE_WAIT_S = 15.0
LAG_WAIT_S = 15.0
CLIENT_TIMEOUT_S = 15.0
WINDOW = "1280,1000"

KNOWN_KEY = b"order-42"
KNOWN_VALUE = b'{"order": 42, "item": "blue teapot"}'
GROUP = "console-readers"
# Partition 0 gets 8 records, partition 1 gets 5 (the known one among them).
COUNTS = {0: 8, 1: 5}
# What the group commits before the browser looks: lag 5 + 5 = 10.
FIRST_COMMIT = {0: 3, 1: 0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install -e '.[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        missing("headless Chromium needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={WINDOW}"):
        options.add_argument(arg)
    service = Service(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    browser = webdriver.Chrome(service=service, options=options)
    browser.set_page_load_timeout(PAGE_WAIT_S)
    try:
        yield browser
    finally:
        browser.quit()


class Shots:
    def __init__(self, driver: Any, folder: Path) -> None:
        self.driver, self.folder, self.n = driver, folder, 0
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot {path}"
        return path


def _fill(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(CLIENT_TIMEOUT_S)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for partition, count in COUNTS.items():
        for i in range(count):
            if partition == 1 and i == 2:
                producer.produce(topic, key=KNOWN_KEY, value=KNOWN_VALUE, partition=1, headers=[("source", b"browser-test")])
            else:
                producer.produce(topic, key=f"k{partition}-{i}".encode(), value=f"value {partition}/{i}".encode(), partition=partition)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0


def _commit_first(bootstrap: str, topic: str) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        offsets = [TopicPartition(topic, p, o) for p, o in FIRST_COMMIT.items()]
        result = consumer.commit(offsets=offsets, asynchronous=False)
        assert result is not None and all(tp.error is None for tp in result), result
    finally:
        consumer.close()


def _consume_the_rest(bootstrap: str, topic: str) -> Any:
    """Join the group, read every record after the committed offsets and commit; returns the
    open consumer (still a member of the group)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
        }
    )
    consumer.subscribe([topic])
    want = sum(COUNTS.values()) - sum(FIRST_COMMIT.values())
    got = 0
    deadline = time.monotonic() + CLIENT_TIMEOUT_S * 2
    while got < want and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error() is not None:
            assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
            continue
        got += 1
    assert got == want, f"consumed {got} of {want} records"
    consumer.commit(asynchronous=False)
    return consumer


def _click(driver: Any, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    link = WebDriverWait(driver, PAGE_WAIT_S).until(ec.element_to_be_clickable((By.LINK_TEXT, text)))
    assert link.is_displayed()
    link.click()


def test_browse_to_a_known_record_and_watch_a_group_catch_up(broker_factory, driver, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    http_port = _free_port()
    broker = broker_factory({"kbroker.http.listen": f"127.0.0.1:{http_port}"})
    if broker.kind != "kbroker":
        pytest.skip("the web console is kbroker's own")
    base = f"http://127.0.0.1:{http_port}"
    topic = unique_topic("console-orders")
    _fill(broker.bootstrap, topic)
    _commit_first(broker.bootstrap, topic)
    shots = Shots(driver, tmp_path / "artifacts")
    wait = WebDriverWait(driver, PAGE_WAIT_S)

    driver.get(base + "/")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Cluster overview")
    # the live charts fill from the polled counters
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "figure.chart .current").text != "-")
    shots.take("overview")

    # Topics -> the topic -> Messages -> Partition 1: the known record is on the page
    _click(driver, "Topics")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Topics")
    shots.take("topics")
    _click(driver, topic)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text.startswith(topic))
    partitions = driver.find_element(By.ID, "partitions").text
    assert "Partition 0" in partitions and "Partition 1" in partitions
    shots.take("topic")
    _click(driver, "Messages")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == f"Messages of {topic}")
    assert "value 0/7" in driver.find_element(By.ID, "records").text  # partition 0, newest
    _click(driver, "Partition 1")
    wait.until(lambda d: KNOWN_KEY.decode() in d.find_element(By.ID, "records").text)
    row = driver.find_element(By.CSS_SELECTOR, '#records tr[data-offset="2"]')
    shown = json.loads(row.find_element(By.CSS_SELECTOR, "td.value pre").text)
    assert shown == json.loads(KNOWN_VALUE)
    assert "browser-test" in row.find_element(By.CSS_SELECTOR, "td.headers").text
    shots.take("messages-partition-1")

    # Consumer Groups -> the group: lag 10 as a plain number
    _click(driver, "Consumer Groups")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Consumer Groups")
    shots.take("groups")
    _click(driver, GROUP)
    wait.until(lambda d: d.find_element(By.ID, "total-lag").text == "10")
    lags = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#offsets td.lag")]
    assert lags == ["5", "5"]
    shots.take("group-lag-10")

    # the group consumes; the page (not reloaded) shows lag 0 within the bounded wait
    consumer = _consume_the_rest(broker.bootstrap, topic)
    try:
        WebDriverWait(driver, LAG_WAIT_S).until(lambda d: d.find_element(By.ID, "total-lag").text == "0")
        assert [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#offsets td.lag")] == ["0", "0"]
        WebDriverWait(driver, LAG_WAIT_S).until(lambda d: d.find_element(By.ID, "group-members").text == "1")
        # the members table follows too: the one member holds both partitions
        WebDriverWait(driver, LAG_WAIT_S).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#members tbody").text.endswith(f"{topic}: 0, 1")
        )
        shots.take("group-lag-0")
    finally:
        consumer.close()
    assert sorted(p.name for p in (tmp_path / "artifacts").glob("*.png")) == [
        "01-overview.png", "02-topics.png", "03-topic.png", "04-messages-partition-1.png",
        "05-groups.png", "06-group-lag-10.png", "07-group-lag-0.png",
    ]  # fmt: skip
