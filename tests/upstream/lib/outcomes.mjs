// OperationOutcome bodies the wrapper answers with itself (Medplum's own come
// back from the router). GP Connect errors carry a Spine error code, so a
// client can be tested against the codes a real GP Connect provider sends.

export const SPINE_ERROR_SYSTEM = 'https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1';

const SPINE_DISPLAY = {
  DUPLICATE_REJECTED: 'Create would lead to creation of a duplicate resource',
  INVALID_RESOURCE: 'Invalid validation of resource',
  INVALID_REFERENCE: 'Invalid Reference',
  INVALID_PARAMETER: 'Invalid parameter',
  NO_RECORD_FOUND: 'No record found',
};

/**
 * @param {string} code - FHIR issue type (invalid, conflict, duplicate, transient, ...)
 * @param {string} text - human-readable detail
 * @param {string} [spineCode] - Spine-ErrorOrWarningCode-1 code, if any
 */
export function outcome(code, text, spineCode) {
  const details = { text };
  if (spineCode) {
    details.coding = [{ system: SPINE_ERROR_SYSTEM, code: spineCode, display: SPINE_DISPLAY[spineCode] ?? spineCode }];
  }
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details }] };
}

/** A response the HTTP layer sends as-is: status plus an OperationOutcome body. */
export function reject(status, code, text, spineCode) {
  return { status, body: outcome(code, text, spineCode) };
}
