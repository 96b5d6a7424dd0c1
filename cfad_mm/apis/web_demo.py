"""A small local web demo: upload a video, see its action tubes (rendered GIF/mp4, timeline, table, JSON).

:func:`create_app` builds a FastAPI app around a loaded model (``tools/web_demo.py`` is its command line):

* ``GET /`` -- one static HTML page (plain ``fetch()``, no JS framework);
* ``POST /api/detect`` -- a multipart form with one file field ``video``; answers JSON with the tubes and the
  URLs of the results, or ``{"error": message}`` with HTTP 400 (not a video, undecodable, too large a network
  input), 413 (larger than ``max_upload_bytes``) or 422 (no file);
* ``GET /results/{job}/{name}`` -- ``tubes.json``, ``tubes.gif``, ``tubes.mp4`` and ``timeline.png`` of a job.

Uploads are untrusted: the body is counted while it is read and refused beyond the limit, the file is stored
under a server-generated name (the client's file name is only shown back, never used as a path), error
messages name the uploaded file by its client name instead of the server path, and result files are served
only for job ids of the server's own format and a fixed set of names.
"""
import html
import json
import logging
import os
import os.path as osp
import re
import shutil
import threading
import uuid
from typing import Optional

__all__ = ['create_app', 'DEFAULT_MAX_UPLOAD_MB', 'PAGE']

DEFAULT_MAX_UPLOAD_MB = 200
# Extensions kept on the stored upload (a hint for the demuxer); anything else is stored as ``.bin``.
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.ogv', '.gif')
RESULT_FILES = {'tubes.json': 'application/json', 'tubes.gif': 'image/gif', 'tubes.mp4': 'video/mp4',
                'timeline.png': 'image/png'}
JOB_RE = re.compile(r'^[0-9a-f]{32}$')
# Multipart framing around the file (boundaries, headers): allowed on top of the file size limit.
FORM_OVERHEAD = 64 * 1024


class UploadTooLarge(Exception):
    """The request body exceeds the upload limit."""


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>CFAD action tubes</title>
<style>
 body { font-family: sans-serif; margin: 1.5em; max-width: 1100px; }
 #error { color: #b00020; white-space: pre-wrap; font-weight: bold; }
 #status { color: #555; }
 table { border-collapse: collapse; margin-top: .5em; }
 th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: left; }
 .media { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
 .media figure { margin: 0; }
 .media img, .media video { width: 400px; max-width: 100%; border: 1px solid #ccc; }
 #gif { image-rendering: pixelated; }
 #timeline { max-width: 100%; }
 .hidden { display: none; }
</style>
</head>
<body>
<h1>CFAD action tubes</h1>
<form id="upload">
  <input type="file" id="video" name="video" accept="video/*" required>
  <button type="submit" id="submit">Detect tubes</button>
  <span class="limit">(at most __LIMIT__)</span>
</form>
<p id="status"></p>
<p id="error" role="alert"></p>
<div id="result" class="hidden">
  <h2>Result for <span id="video-name"></span></h2>
  <p><span id="summary"></span> &mdash;
    <a id="download" href="#" download="tubes.json">download tubes.json</a></p>
  <div class="media">
    <figure><img id="gif" alt="video with tubes (GIF)"><figcaption>tubes (GIF)</figcaption></figure>
    <figure><video id="mp4" controls muted></video>
      <figcaption><span id="mp4-msg">tubes (mp4)</span> &mdash;
        <a id="mp4-link" href="#">download</a></figcaption>
    </figure>
  </div>
  <h3>Tubes</h3>
  <table id="tubes">
    <thead><tr><th>id</th><th>label</th><th>score</th><th>frames</th></tr></thead>
    <tbody></tbody>
  </table>
  <h3>Timeline</h3>
  <div id="timeline-box"><img id="timeline" alt="tube timeline"><p id="timeline-msg"></p></div>
</div>
<script>
const form = document.getElementById('upload');
const $ = (id) => document.getElementById(id);
form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const file = $('video').files[0];
  if (!file) { $('error').textContent = 'choose a video file first'; return; }
  $('error').textContent = '';
  $('result').classList.add('hidden');
  $('status').textContent = 'uploading and detecting ' + file.name + ' ...';
  $('submit').disabled = true;
  const data = new FormData();
  data.append('video', file);
  try {
    const resp = await fetch('api/detect', { method: 'POST', body: data });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      $('status').textContent = '';
      $('error').textContent = 'Error (HTTP ' + resp.status + '): ' +
        ((body && body.error) ? body.error : resp.statusText);
      return;
    }
    show(body, file.name);
    $('status').textContent = 'done';
  } catch (e) {
    $('status').textContent = '';
    $('error').textContent = 'Request failed: ' + e;
  } finally {
    $('submit').disabled = false;
  }
});
$('mp4').addEventListener('error', () => {  // mp4v: not every browser plays it; the GIF shows the same
  $('mp4').classList.add('hidden');
  $('mp4-msg').textContent = 'this browser cannot play the mp4 (MPEG-4 Part 2 video); the GIF shows the same';
});
function show(r, name) {
  $('video-name').textContent = name;
  $('summary').textContent = r.tubes.length + ' tube(s) with score >= ' + r.score_thr + ' in ' + r.nframes +
    ' frames (' + r.resolution[1] + 'x' + r.resolution[0] + ')';
  $('gif').src = r.files['tubes.gif'];
  $('mp4').classList.remove('hidden');
  $('mp4-msg').textContent = 'tubes (mp4)';
  $('mp4').src = r.files['tubes.mp4'];
  $('mp4-link').href = r.files['tubes.mp4'];
  if (r.files['timeline.png']) {
    $('timeline').src = r.files['timeline.png'];
    $('timeline').classList.remove('hidden');
    $('timeline-msg').textContent = '';
  } else {
    $('timeline').removeAttribute('src');
    $('timeline').classList.add('hidden');
    $('timeline-msg').textContent = r.timeline_message || 'timeline unavailable';
  }
  const body = $('tubes').querySelector('tbody');
  body.replaceChildren();
  for (const t of r.tubes) {
    const tr = document.createElement('tr');
    for (const v of [t.tube_id, t.label_name, t.score.toFixed(3), t.first_frame + '-' + t.last_frame]) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  $('download').href = r.files['tubes.json'];
  $('result').classList.remove('hidden');
}
</script>
</body>
</html>
"""


def _safe_display_name(name: Optional[str]) -> str:
    """The client's file name reduced to a short, printable base name (only ever displayed)."""
    name = osp.basename((name or '').replace('\\', '/')) or 'upload'
    name = ''.join(c for c in name if c.isprintable())[:100]
    return name or 'upload'


def _format_size(n: int) -> str:
    return f'{n / 2**20:.0f} MB' if n >= 2**20 else f'{n / 1024:.0f} KB' if n >= 1024 else f'{n} bytes'


def create_app(model, work_dir: str, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20,
               score_thr: float = 0.05, max_gif_frames: int = 200, keep_uploads: bool = False):
    """The web demo app around a loaded model.

    Args:
        model: From :func:`cfad_mm.apis.init_detector`.
        work_dir (str): Where uploads (``uploads/``) and results (``results/<job>/``) are written.
        max_upload_bytes (int): Largest accepted video file; larger uploads get HTTP 413.
            Defaults to 200 MB.
        score_thr (float): Tubes scoring below it are left out. Defaults to 0.05.
        max_gif_frames (int): Frames of the rendered GIF at most. Defaults to 200.
        keep_uploads (bool): Keep the uploaded videos after processing. Defaults to False (deleted).

    Returns:
        fastapi.FastAPI: the app (serve it with ``uvicorn.run(app, host='127.0.0.1')``).
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool

    from cfad_mm.apis.inference import inference_video, tubes_to_json
    from cfad_mm.datasets.media import MediaError
    from cfad_mm.visualization import class_names, render_video

    if max_upload_bytes <= 0:
        raise ValueError(f'max_upload_bytes must be > 0, got {max_upload_bytes}')
    upload_dir = osp.join(work_dir, 'uploads')
    result_dir = osp.join(work_dir, 'results')
    os.makedirs(upload_dir, exist_ok=True)
    os.makedirs(result_dir, exist_ok=True)
    classes = class_names(model)
    lock = threading.Lock()  # one model: one video at a time
    limit_text = _format_size(max_upload_bytes)
    page = PAGE.replace('__LIMIT__', html.escape(limit_text))

    app = FastAPI(title='CFAD web demo', docs_url=None, redoc_url=None, openapi_url=None)
    app.state.model, app.state.work_dir, app.state.max_upload_bytes = model, work_dir, max_upload_bytes

    def error(status: int, message: str):
        return JSONResponse({'error': message}, status_code=status)

    def too_large():
        return error(413, f'the upload is larger than the limit of {limit_text}')

    @app.get('/', response_class=HTMLResponse)
    def index():
        return HTMLResponse(page)

    def process(video_path: str, job: str, shown_name: str) -> dict:
        out = osp.join(result_dir, job)
        os.makedirs(out)
        from cfad_mm.apis.inference import VideoFrames
        with lock:
            frames = VideoFrames(video_path)
            result = inference_video(model, frames, progress=False)
            tubes = tubes_to_json(result, classes, score_thr)
            tubes['video'] = shown_name
            with open(osp.join(out, 'tubes.json'), 'w') as f:
                json.dump(tubes, f)
            fps = 10.0
            if frames.reader is not None:
                fps = float(frames.reader.get_avg_fps()) or 10.0
            render_video(frames, tubes['tubes'], osp.join(out, 'tubes.mp4'), fps=fps,
                         gif_path=osp.join(out, 'tubes.gif'), max_gif_frames=max_gif_frames)
        timeline, timeline_message = None, None
        try:
            from cfad_mm.analysis.timeline import plot_tube_timeline
        except ImportError:
            timeline_message = 'timeline unavailable (cfad_mm.analysis.timeline is not installed)'
        else:
            try:
                plot_tube_timeline(tubes['tubes'], tubes['nframes'], osp.join(out, 'timeline.png'),
                                   classes=classes)
                timeline = f'results/{job}/timeline.png'
            except Exception as err:  # the picture is an extra: the tubes are still shown
                timeline_message = f'timeline unavailable ({type(err).__name__}: {err})'
        files = {name: f'results/{job}/{name}' for name in ('tubes.json', 'tubes.gif', 'tubes.mp4')}
        files['timeline.png'] = timeline
        rows = [dict(tube_id=t['tube_id'], label=t['label'], label_name=t['label_name'], score=t['score'],
                     first_frame=t['boxes'][0][0] if t['boxes'] else None,
                     last_frame=t['boxes'][-1][0] if t['boxes'] else None) for t in tubes['tubes']]
        return dict(job=job, video=shown_name, nframes=tubes['nframes'], resolution=tubes['resolution'],
                    score_thr=score_thr, tubes=rows, files=files, timeline_message=timeline_message)

    @app.post('/api/detect')
    async def detect(request: Request):
        length = request.headers.get('content-length')
        if length is not None:
            try:
                if int(length) > max_upload_bytes + FORM_OVERHEAD:
                    return too_large()
            except ValueError:
                return error(400, 'invalid Content-Length header')
        received = 0
        receive = request.receive

        async def limited_receive():  # also bounds chunked uploads without a Content-Length
            nonlocal received
            message = await receive()
            received += len(message.get('body', b''))
            if received > max_upload_bytes + FORM_OVERHEAD:
                raise UploadTooLarge()
            return message

        limited = Request(request.scope, limited_receive)
        job = uuid.uuid4().hex
        try:
            form = await limited.form(max_files=1, max_fields=4)
        except UploadTooLarge:
            return too_large()
        except Exception as err:  # malformed multipart body
            return error(400, f'cannot read the upload form: {err}')
        path = None
        try:
            upload = form.get('video')
            if upload is None or isinstance(upload, str):
                return error(422, 'send the video as the multipart file field "video"')
            shown_name = _safe_display_name(upload.filename)
            ext = osp.splitext(shown_name)[1].lower()
            path = osp.join(upload_dir, job + (ext if ext in VIDEO_EXTS else '.bin'))
            size = 0
            with open(path, 'wb') as f:
                while True:
                    chunk = await upload.read(2**20)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_upload_bytes:
                        return too_large()
                    f.write(chunk)
            if size == 0:
                return error(400, f'{shown_name}: the uploaded file is empty')
            try:
                return JSONResponse(await run_in_threadpool(process, path, job, shown_name))
            except (MediaError, FileNotFoundError) as err:  # includes the inference input-size errors
                shutil.rmtree(osp.join(result_dir, job), ignore_errors=True)
                return error(400, str(err).replace(path, shown_name))
            except Exception as err:  # a bug or a broken install: logged with its traceback, a short message
                logging.getLogger(__name__).exception('web demo: processing %s failed', shown_name)
                shutil.rmtree(osp.join(result_dir, job), ignore_errors=True)
                return error(500, f'{shown_name}: processing failed ({type(err).__name__}); '
                                  'see the server log')
        finally:
            await form.close()
            if path is not None and not keep_uploads and osp.exists(path):
                os.remove(path)

    @app.get('/results/{job}/{name}')
    def result_file(job: str, name: str):
        if not JOB_RE.match(job) or name not in RESULT_FILES:
            return error(404, 'not found')
        path = osp.join(result_dir, job, name)
        if not osp.isfile(path):
            return error(404, 'not found')
        kwargs = {'filename': name} if name == 'tubes.json' else {}
        return FileResponse(path, media_type=RESULT_FILES[name], **kwargs)

    return app
