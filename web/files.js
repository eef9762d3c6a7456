// Attachments (docs/protocol.md, "Part 3: files"): a file goes from the browser straight
// to the file store with the presigned PUT an `upload` answers, with its progress shown;
// a message then names it in `files`. Images (png, jpeg, gif, webp: the types the server
// serves inline) are shown as thumbnails, anything else as a download link with its name
// and size. The same in the WebSocket and the polling mode: `request` is either transport.

/// The types the server serves inline, so the page may show them as images.
const INLINE = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
/// Headers a page may not set itself (the browser sends its own).
const BROWSER_HEADERS = new Set(["content-length", "host"]);
/// Longest a PUT may take before it is given up on.
const UPLOAD_TIMEOUT_MS = 5 * 60 * 1000;

/// `bytes` as people read a size: 980 B, 12.4 KB, 3.1 MB.
export function formatSize(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1000 * 1000) return `${(bytes / 1000).toFixed(1)} KB`;
  return `${(bytes / 1000 / 1000).toFixed(1)} MB`;
}

export function isImage(file) {
  return INLINE.has(String(file.contentType).toLowerCase());
}

/// Uploads `file` (a DOM File) for the conversation `where` (`{room}` or `{with}`):
/// asks for a slot, PUTs the bytes with `onProgress(fraction)`; resolves with the
/// attachment to name in a message (with a local URL to show the sender's own image).
export async function upload(request, where, file, onProgress) {
  const contentType = file.type || "application/octet-stream";
  const slot = await request({ action: "upload", ...where, name: file.name, contentType, size: file.size });
  await new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(slot.method, slot.url);
    for (const [name, value] of Object.entries(slot.headers ?? {})) {
      if (!BROWSER_HEADERS.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.timeout = UPLOAD_TIMEOUT_MS;
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () =>
      xhr.status >= 200 && xhr.status < 300
        ? resolve()
        : reject(Object.assign(new Error(`the file store refused ${file.name} (HTTP ${xhr.status})`), { code: "upload" }));
    xhr.onerror = () => reject(Object.assign(new Error(`${file.name} could not be sent`), { code: "network" }));
    xhr.ontimeout = () => reject(Object.assign(new Error(`${file.name} took too long to send`), { code: "timeout" }));
    xhr.send(file);
  });
  onProgress(1);
  return {
    id: slot.fileId,
    name: file.name,
    contentType,
    size: file.size,
    url: isImage({ contentType }) ? URL.createObjectURL(file) : undefined,
  };
}

/// The files of a message, as shown in the log: thumbnails and links.
export function filesElement(files) {
  const list = document.createElement("ul");
  list.className = "files";
  for (const file of files) {
    const item = document.createElement("li");
    const label = `${file.name} (${formatSize(file.size)})`;
    if (file.url && isImage(file)) {
      const link = document.createElement("a");
      link.href = file.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      const image = document.createElement("img");
      image.className = "thumb";
      image.src = file.url;
      image.alt = label;
      image.loading = "lazy";
      link.append(image);
      item.append(link);
    } else if (file.url) {
      const link = document.createElement("a");
      link.className = "file";
      link.href = file.url;
      link.rel = "noopener noreferrer";
      link.download = file.name;
      link.textContent = label;
      item.append(link);
    } else {
      item.className = "file";
      item.textContent = label;
    }
    list.append(item);
  }
  return list;
}
