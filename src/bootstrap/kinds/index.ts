/**
 * The resource kinds, in dependency order: spec resolution, observation and planning run their hooks in this order
 * (apply order is each change's phase). A new kind is a file in this directory and an entry here.
 */
import { appKind } from "./app.js";
import { appRoleKind } from "./approle.js";
import { auditKind } from "./audit.js";
import { authKind } from "./auth.js";
import { esoKind } from "./eso.js";
import { identityKind } from "./identity.js";
import { jwtConfigKind, jwtRoleKind } from "./jwt.js";
import type { ResourceKind } from "./kind.js";
import { kubernetesConfigKind } from "./kubernetes-config.js";
import { kubernetesRoleKind } from "./kubernetes-role.js";
import { mountKind } from "./mount.js";
import { policyKind } from "./policy.js";

export const KINDS: readonly ResourceKind[] = [
  auditKind,
  mountKind,
  authKind,
  kubernetesConfigKind,
  policyKind,
  kubernetesRoleKind,
  jwtConfigKind,
  jwtRoleKind,
  appRoleKind,
  identityKind,
  appKind,
  esoKind,
];
