import type { BackendInfo } from "../backend/init_backend.ts";

/** What `/readyz` reports. */
export interface ReadinessReport {
  ready: boolean;
  backend: { ready: boolean; name?: string; error?: string };
  defaultBackbone: { name: string; ready: boolean; error?: string };
}

/**
 * Whether the server can do its work yet: the compute backend is up and the default backbone loads. The
 * server answers from its first moment; this is what says when predictions and `/readyz` may succeed.
 *
 * @example
 * ```ts
 * import { Readiness } from "./readiness.ts";
 * const readiness = new Readiness("tiny");
 * console.assert(!readiness.ready);
 * ```
 */
export class Readiness {
  backend?: BackendInfo;
  backendError?: string;
  backboneReady = false;
  backboneError?: string;

  constructor(readonly defaultBackbone: string) {}

  /** True once the backend and the default backbone are both ready. */
  get ready(): boolean {
    return this.backend !== undefined && this.backboneReady;
  }

  /** The state of each part, for `/readyz`. */
  report(): ReadinessReport {
    return {
      ready: this.ready,
      backend: { ready: this.backend !== undefined, name: this.backend?.name, error: this.backendError },
      defaultBackbone: { name: this.defaultBackbone, ready: this.backboneReady, error: this.backboneError },
    };
  }
}
