import type { Admission, AdmissionAnswer, AdmissionQuestion, AdmissionRequest, CapacityGrant } from '../contracts';
import type { AdmissionRepository } from '../src/admission/repository';

/** Admission decisions as activities; all of them go through the admission lock in PostgreSQL. */
export function createAdmissionActivities(admission: AdmissionRepository) {
  return {
    admit(request: AdmissionRequest): Promise<Admission> {
      return admission.admit(request);
    },
    /** The same decision as a local step: asked again after a lost workflow task, it answers as before. */
    admitOnce(request: AdmissionRequest, question: AdmissionQuestion): Promise<AdmissionAnswer> {
      return admission.admitOnce(request, question);
    },
    holdTask(request: AdmissionRequest, by: string): Promise<void> {
      return admission.hold(request, by);
    },
    releaseHold(taskId: string): Promise<void> {
      return admission.release(taskId);
    },
    overrideAdmission(request: AdmissionRequest, agentId?: string): Promise<CapacityGrant | undefined> {
      return admission.override(request, agentId);
    },
    /** Frees the reservation and queue row of a task that ended or gave up its grant. */
    finishTask(taskId: string): Promise<void> {
      return admission.finish(taskId);
    },
  };
}
