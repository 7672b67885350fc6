// Answers on $PORT. GET / shows the release; GET /env/:name echoes one env var (for tests).
const express = require("express");

const app = express();
const port = Number(process.env.PORT || 3000);
const message = require("./message.json");

app.get("/", (req, res) => {
  res.type("text/plain").send(`${message.text}\n`);
});

app.get("/healthz", (req, res) => res.send("ok"));

app.get("/env/:name", (req, res) => {
  const value = process.env[req.params.name];
  if (value === undefined) return res.status(404).send("unset");
  res.type("application/octet-stream").send(Buffer.from(value, "utf8"));
});

app.listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
