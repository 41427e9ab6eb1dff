/** Thrown by a command that has already printed its result and wants a specific exit code (e.g. 2 = sealed). */
export class ExitWith extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
