/** The tool's version, recorded in manifests and transcripts. Kept in step with package.json by a unit test. */
export const VERSION = "0.1.0";
