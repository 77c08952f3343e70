"""Demo web app: GET / lists the notes as JSON, GET /health answers 200 when the database answers.

Connection settings come from DB_HOST, DB_PORT, DB_NAME, DB_USER and DB_PASS, which poststack's
project_containers role passes (with POSTSTACK_DATABASE_URL).
"""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2


def connect():
    return psycopg2.connect(host=os.environ["DB_HOST"], port=os.environ.get("DB_PORT", "5432"),
                            dbname=os.environ["DB_NAME"], user=os.environ["DB_USER"],
                            password=os.environ["DB_PASS"], connect_timeout=3)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        try:
            with connect() as conn, conn.cursor() as cur:
                if self.path == "/health":
                    cur.execute("SELECT 1")
                    body = {"status": "ok"}
                else:
                    cur.execute("SELECT id, title, body FROM public.notes ORDER BY id")
                    body = {"notes": [{"id": i, "title": t, "body": b} for i, t, b in cur.fetchall()]}
            status = 200
        except psycopg2.Error as exc:
            status, body = 503, {"error": str(exc).strip()}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        print("%s %s" % (self.address_string(), format % args), flush=True)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
