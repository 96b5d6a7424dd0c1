"""The local web demo (tools/web_demo.py, cfad_mm.apis.web_demo): served by uvicorn on a free 127.0.0.1 port
with an untrained tiny model, driven by headless Debian chromium through selenium, and its upload errors
without a browser."""
import contextlib
import glob
import json
import os
import os.path as osp
import socket
import sys
import threading
import time

import pytest
import torch

import cfad_mm  # noqa: F401
from cfad_mm.apis import init_detector

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/cfad/cfad_r3d-18-tiny_synthetic.py')
CHROMIUM, CHROMEDRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--window-size=1200,1400')
CLASSES = ['walk_line', 'circle', 'zigzag', 'jump', 'stop_and_go']
MAX_UPLOAD = 2 * 2**20  # a small limit, so that the 413 test sends little


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app, log_level: str):
    """Serve ``app`` with uvicorn in a background thread on a free 127.0.0.1 port; yields the base URL."""
    import uvicorn
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=port, log_level=log_level))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started:
        assert thread.is_alive() and time.time() < deadline, 'the demo server did not start'
        time.sleep(0.05)
    try:
        yield f'http://127.0.0.1:{port}'
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """``(base_url, work_dir)`` of the demo app served in a background thread."""
    from cfad_mm.apis.web_demo import create_app
    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp('web_demo')
    ckpt = tmp / 'untrained.pth'
    torch.save({'state_dict': init_detector(CONFIG).state_dict(),
                'meta': {'dataset_meta': {'classes': CLASSES}}},
               ckpt)
    # score_thr=0.0: the untrained model's low scores still give tubes
    model = init_detector(CONFIG, str(ckpt), 'cpu', {'model.test_cfg.score_thr': 0.0})
    work_dir = tmp / 'work'
    app = create_app(model, str(work_dir), max_upload_bytes=MAX_UPLOAD, score_thr=0.0)
    with serving(app, 'warning') as base:
        yield base, work_dir


@pytest.fixture(scope='module')
def synth_video(tiny_synth):
    return sorted(glob.glob(osp.join(tiny_synth[0], 'videos', '*', '*.mp4')))[0]


def post_video(base, name, data):
    import urllib3
    return urllib3.request('POST', base + '/api/detect', fields={'video': (name, data, 'video/mp4')},
                           timeout=60, retries=False)


def test_not_a_video_is_a_400_with_message(server):
    base, work_dir = server
    resp = post_video(base, '../../etc/evil.mp4', b'this is not a video at all')
    assert resp.status == 400
    msg = resp.json()['error']
    assert 'cannot decode this video file' in msg and msg.startswith('evil.mp4: ')
    assert str(work_dir) not in msg  # the server path is not shown
    assert os.listdir(work_dir / 'uploads') == []  # deleted after processing, stored inside uploads/ only
    assert not osp.exists(osp.join(work_dir, '..', '..', 'etc', 'evil.mp4'))


def test_too_large_upload_is_a_413(server):
    base, work_dir = server
    resp = post_video(base, 'big.mp4', b'\0' * (MAX_UPLOAD + 200 * 1024))
    assert resp.status == 413
    assert 'larger than the limit of 2 MB' in resp.json()['error']
    # a chunked upload (no Content-Length) is counted while it is read
    import urllib3
    big = b'\0' * (MAX_UPLOAD + 2**20)
    body, ctype = urllib3.encode_multipart_formdata({'video': ('big.mp4', big, 'video/mp4')})
    chunks = (body[i:i + 2**16] for i in range(0, len(body), 2**16))
    resp = urllib3.PoolManager().request('POST', base + '/api/detect', body=chunks, chunked=True,
                                         headers={'Content-Type': ctype}, retries=False, timeout=60)
    assert resp.status == 413 and 'larger than the limit' in resp.json()['error']
    assert os.listdir(work_dir / 'uploads') == []


def test_missing_file_and_unknown_result(server):
    import urllib3
    base, _ = server
    resp = urllib3.request('POST', base + '/api/detect', fields={'other': 'x'}, retries=False)
    assert resp.status == 422 and 'video' in resp.json()['error']
    for path in ('/results/../../etc/passwd', '/results/' + '0' * 32 + '/tubes.json',
                 '/results/' + '0' * 32 + '/secret.txt'):
        assert urllib3.request('GET', base + path, retries=False).status == 404


def test_browser_upload_shows_tubes(server, synth_video, tmp_path):
    if not (osp.exists(CHROMIUM) and osp.exists(CHROMEDRIVER)):
        pytest.skip(f'needs Debian chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): '
                    'apt-get install -y chromium chromium-driver')
    import urllib3
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    base, _ = server
    t0 = time.time()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM  # explicit binary and driver: no Selenium Manager download
    for flag in CHROMIUM_FLAGS + (f'--user-data-dir={tmp_path / "profile"}', ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(30)
        driver.get(base + '/')
        wait = WebDriverWait(driver, 45)

        def upload(path):
            driver.find_element(By.ID, 'video').send_keys(str(path))
            driver.find_element(By.ID, 'submit').click()
            wait.until(lambda d: d.find_element(By.ID, 'status').text == 'done'
                       or d.find_element(By.ID, 'error').text)

        # an upload that is not a video: the message on the page, no result
        bad = tmp_path / 'notes.mp4'
        bad.write_bytes(b'not a video')
        upload(bad)
        err = driver.find_element(By.ID, 'error').text
        assert err.startswith('Error (HTTP 400): notes.mp4: cannot decode this video file'), err
        assert not driver.find_element(By.ID, 'result').is_displayed()

        upload(synth_video)
        assert driver.find_element(By.ID, 'error').text == ''
        assert driver.find_element(By.ID, 'result').is_displayed()
        rows = driver.find_elements(By.CSS_SELECTOR, '#tubes tbody tr')
        href = driver.find_element(By.ID, 'download').get_attribute('href')
        resp = urllib3.request('GET', href, retries=False)
        assert resp.status == 200 and resp.headers['content-type'].startswith('application/json')
        served = json.loads(resp.data)
        assert served['nframes'] == 24 and served['resolution'] == [48, 64]
        assert len(served['tubes']) > 0 and len(rows) == len(served['tubes'])
        first = served['tubes'][0]
        cells = [c.text for c in rows[0].find_elements(By.TAG_NAME, 'td')]
        assert cells == [str(first['tube_id']), first['label_name'], f"{first['score']:.3f}",
                         f"{first['boxes'][0][0]}-{first['boxes'][-1][0]}"]
        # the GIF (and the timeline, when that module is present) loaded in the browser
        wait.until(lambda d: d.execute_script('const i = document.getElementById("gif");'
                                              'return i.complete && i.naturalWidth > 0;'))
        assert driver.execute_script('return document.getElementById("gif").naturalWidth') == 64
        if driver.find_element(By.ID, 'timeline').is_displayed():
            wait.until(lambda d: d.execute_script('const i = document.getElementById("timeline");'
                                                  'return i.complete && i.naturalWidth > 0;'))
        else:
            assert 'timeline unavailable' in driver.find_element(By.ID, 'timeline-msg').text
        shot = os.environ.get('CFAD_WEB_DEMO_SCREENSHOT') or str(tmp_path / 'web_demo.png')
        driver.save_screenshot(shot)
        assert osp.getsize(shot) > 0
    finally:
        driver.quit()
    print(f'browser test: {time.time() - t0:.1f} s', file=sys.stderr)


def test_an_unexpected_failure_is_a_short_500_and_leaves_no_result(tmp_path, synth_video):
    """Not a media problem (here: a model that cannot run): a JSON 500 naming the upload, no traceback, the
    job's folder removed."""
    import types

    from cfad_mm.apis.web_demo import create_app
    broken = types.SimpleNamespace(cfg=None, dataset_meta={'classes': CLASSES})
    app = create_app(broken, str(tmp_path / 'work'), max_upload_bytes=MAX_UPLOAD, score_thr=0.0)
    with serving(app, 'critical') as base:
        with open(synth_video, 'rb') as f:
            resp = post_video(base, 'clip.mp4', f.read())
    assert resp.status == 500
    message = resp.json()['error']
    assert message.startswith('clip.mp4: processing failed (') and 'Traceback' not in message
    results = tmp_path / 'work' / 'results'
    assert not results.exists() or not any(results.iterdir())
