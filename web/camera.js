// The webcam, through getUserMedia: a live preview, and frames taken from it as JPEG files.

/** Longest side of a captured frame, in pixels: enough for the backbones (224 at most), small to upload. */
const FRAME_SIDE = 256;

/**
 * One camera stream shown in a `<video>`. `start()` asks the browser for the camera (the user is asked
 * once); `frame()` grabs the picture as a File; `stop()` releases the camera.
 *
 * @example
 * const camera = new Camera(document.querySelector("video"));
 * await camera.start();
 * const file = await camera.frame("frame.jpg");
 */
export class Camera {
  #stream = null;
  #canvas = document.createElement("canvas");

  constructor(video) {
    this.video = video;
  }

  get on() {
    return this.#stream !== null;
  }

  async start() {
    if (this.#stream) return;
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error("this browser gives no camera access here (it needs https or localhost)");
    }
    this.#stream = await navigator.mediaDevices.getUserMedia({
      video: { width: 320, height: 240 },
      audio: false,
    });
    this.video.srcObject = this.#stream;
    await this.video.play();
  }

  stop() {
    for (const track of this.#stream?.getTracks() ?? []) track.stop();
    this.#stream = null;
    this.video.srcObject = null;
  }

  /** The current picture, scaled so its longest side is at most FRAME_SIDE, as a JPEG File. */
  frame(name) {
    const { videoWidth: w, videoHeight: ht } = this.video;
    if (!w || !ht) return Promise.reject(new Error("the camera has no picture yet"));
    const scale = Math.min(1, FRAME_SIDE / Math.max(w, ht));
    this.#canvas.width = Math.round(w * scale);
    this.#canvas.height = Math.round(ht * scale);
    this.#canvas.getContext("2d").drawImage(this.video, 0, 0, this.#canvas.width, this.#canvas.height);
    return new Promise((resolve, reject) =>
      this.#canvas.toBlob(
        (
          blob,
        ) => (blob ? resolve(new File([blob], name, { type: "image/jpeg" })) : reject(new Error("no frame"))),
        "image/jpeg",
        0.9,
      )
    );
  }
}

/**
 * Makes `button` record while held, by pointer or by keyboard (Space or Enter): `onFrame` is called every
 * `intervalMs` while it is down, `onRelease` once when it comes up.
 */
export function holdToRecord(button, { intervalMs = 150, onFrame, onRelease }) {
  let timer = null;
  const start = () => {
    if (timer !== null || button.disabled) return;
    button.classList.add("recording");
    onFrame();
    timer = setInterval(onFrame, intervalMs);
  };
  const stop = () => {
    if (timer === null) return;
    clearInterval(timer);
    timer = null;
    button.classList.remove("recording");
    onRelease();
  };
  button.addEventListener("pointerdown", (e) => {
    button.setPointerCapture?.(e.pointerId);
    start();
  });
  button.addEventListener("pointerup", stop);
  button.addEventListener("pointercancel", stop);
  button.addEventListener("keydown", (e) => {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) {
      e.preventDefault();
      start();
    }
  });
  button.addEventListener("keyup", (e) => {
    if (e.key === " " || e.key === "Enter") stop();
  });
  button.addEventListener("blur", stop);
}
