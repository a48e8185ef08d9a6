"""``fashion-serve``: the models over HTTP, speaking the KServe v2 / open inference protocol,
with dynamic batching, limits and metrics; scaled out on Ray Serve with ``--engine ray``.

Modules, from the top down: ``cli`` (the command); ``app`` (the settings, and
``build_app``); ``asgi`` (the ASGI app: errors to statuses, CORS, metrics, the
access log; and the uvicorn server); ``routes`` (what each route answers: health,
metadata, infer, classify, metrics); ``limits`` (body size and image count, the body read
with its time-out, the token and CORS origins); ``protocol`` (v2 parsing and encoding, the
binary extension, multipart, errors to HTTP statuses); ``batching`` (requests gathered into
model runs); ``model`` (a model as served: the package's ``ModelRunner``, metadata);
``metrics`` (Prometheus text). ``fashion_onnx.ray.serve`` deploys the same app on Ray
Serve. Install with ``pip install 'fashion-onnx[serve,cpu]'``.
"""
