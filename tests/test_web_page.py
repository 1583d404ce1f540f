"""The web page in a real headless Chromium: upload a recording, see its transcript and attention."""

import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from fsdd_audio import connected_digits, expected_text, wav_bytes


def start_chromium(system_program, tmp_path, *flags: str) -> webdriver.Chrome:
    """Headless Chromium (Debian's chromium and chromium-driver) driven by Selenium."""
    options = webdriver.ChromeOptions()
    options.binary_location = system_program("chromium")
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1100", *flags,
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(system_program("chromedriver")))
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def browser(system_program, tmp_path):
    driver = start_chromium(system_program, tmp_path)
    yield driver
    driver.quit()


# The fraction of canvas pixels that are neither the white background nor transparent.
DRAWN_FRACTION = """
const c = document.getElementById('attention');
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
return n / (c.width * c.height);
"""


def test_upload_shows_transcript_and_draws_attention(live_server, browser, fsdd_dir, tmp_path):
    wav = tmp_path / "digits.wav"
    wav.write_bytes(wav_bytes(connected_digits(fsdd_dir, "3907", "george")[0]))
    browser.get(live_server.url + "/")
    assert "Speech to text" in browser.title + browser.find_element(By.TAG_NAME, "h1").text

    browser.find_element(By.ID, "file").send_keys(str(wav))
    transcript = WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.ID, "transcript").text.strip() or b.find_element(By.ID, "error").text
    )

    assert not browser.find_element(By.ID, "error").text, transcript
    assert "s of audio" in browser.find_element(By.ID, "details").text
    assert transcript == expected_text("3907")  # george's held-out takes: the shipped model gets them right
    assert browser.execute_script(DRAWN_FRACTION) > 0.5  # the matrix fills most of the canvas
    browser.save_screenshot(str(tmp_path / "page.png"))


def test_the_model_chosen_on_the_page_is_the_one_that_answers(two_model_server, browser, fsdd_dir, tmp_path):
    wav = tmp_path / "digits.wav"
    wav.write_bytes(wav_bytes(connected_digits(fsdd_dir, "3907", "george")[0]))
    browser.get(two_model_server.url + "/")
    choice = Select(browser.find_element(By.ID, "model"))
    WebDriverWait(browser, 10).until(lambda b: len(choice.options) == 2)  # filled from GET /v1/models
    assert [o.text for o in choice.options] == ["digits", "digits-copy"]
    assert choice.first_selected_option.text == "digits"  # the server's default

    choice.select_by_visible_text("digits-copy")
    browser.find_element(By.ID, "file").send_keys(str(wav))
    details = WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.ID, "details").text or b.find_element(By.ID, "error").text
    )
    assert not browser.find_element(By.ID, "error").text, details
    assert "by digits-copy;" in details
    assert browser.find_element(By.ID, "transcript").text == expected_text("3907")


def test_a_bad_file_shows_the_servers_message(live_server, browser, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio" * 50)
    browser.get(live_server.url + "/")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    message = WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "error").text)
    assert "cannot decode audio" in message
    assert browser.find_element(By.ID, "result").get_attribute("hidden") is not None


def test_microphone_recording_is_sent_as_wav_and_transcribed(live_server, system_program, fsdd_dir, tmp_path):
    """Chromium's fake capture device plays a real recording into getUserMedia, once (%noloop:
    looped, the 2 s recorded would hold "six four six")."""
    wav = tmp_path / "mic.wav"
    wav.write_bytes(wav_bytes(connected_digits(fsdd_dir, "64", "george")[0]))
    driver = start_chromium(
        system_program, tmp_path, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
    )
    try:
        driver.get(live_server.url + "/")
        record = driver.find_element(By.ID, "record")
        record.click()
        WebDriverWait(driver, 10).until(lambda d: record.text == "Stop")
        time.sleep(2.0)
        record.click()
        WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.ID, "details").text or d.find_element(By.ID, "error").text
        )
        assert not driver.find_element(By.ID, "error").text
        seconds = float(driver.find_element(By.ID, "details").text.split(" s of audio")[0])
        assert 1.0 < seconds < 4.0  # what was recorded, decoded by the server
        assert driver.find_element(By.ID, "transcript").text == expected_text("64")
    finally:
        driver.quit()
