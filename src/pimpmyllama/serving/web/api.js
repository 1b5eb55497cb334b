// The page's calls to the server: JSON endpoints, uploads, and a streamed chat read
// from its server-sent events. Every call sends the API key when one is typed in.
"use strict";

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const api = {
  key: localStorage.getItem("pml-api-key") || "",

  setKey(key) {
    this.key = key.trim();
    localStorage.setItem("pml-api-key", this.key);
  },

  headers(extra = {}) {
    return this.key ? { ...extra, Authorization: `Bearer ${this.key}` } : extra;
  },

  async check(response) {
    if (response.ok) return response;
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error.message || message;
    } catch (_) { /* not our JSON error shape */ }
    throw new ApiError(response.status, message);
  },

  async get(path) {
    const response = await this.check(await fetch(path, { headers: this.headers() }));
    return response.json();
  },

  async upload(base, file) {
    const form = new FormData();
    form.append("file", file, file.name);
    const path = `/pml/knowledge/${encodeURIComponent(base)}/documents`;
    const response = await this.check(await fetch(path, { method: "POST", headers: this.headers(), body: form }));
    return response.json();
  },

  // POST /v1/chat/completions with stream: true. onDelta(text) for each piece,
  // onChunk(chunk) for every chunk; resolves when [DONE] arrives. Aborting `signal`
  // closes the connection, and the server stops generating.
  async streamChat(body, { signal, onDelta, onChunk }) {
    const response = await this.check(await fetch("/v1/chat/completions", {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    }));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (!data) continue;
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(400, chunk.error.message);
        onChunk(chunk);
        const piece = chunk.choices && chunk.choices[0] && chunk.choices[0].delta.content;
        if (piece) onDelta(piece);
      }
    }
  },
};
