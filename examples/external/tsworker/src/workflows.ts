// The workflow of jobgate's external kind "report.build"
// (examples/external/kinds.json), in TypeScript. It follows the
// conventions of docs/kinds.md, "External kinds".
import {
  ApplicationFailure,
  condition,
  defineUpdate,
  isCancellation,
  setHandler,
  sleep,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';

interface Input {
  pages: number;
  approval?: boolean;
  fail?: boolean;
}

interface Approval {
  by: string;
  note?: string;
}

// POST /v1/jobs/{id}/inputs/approve arrives as this Update.
export const approve = defineUpdate<string, [Approval]>('approve');

// progress publishes the job's progress in the memo field jobgate reads.
function progress(current: number, total: number, message: string): void {
  upsertMemo({ progress: { current, total, message } });
}

export async function BuildReport(input: Input): Promise<{ pages: number; approvedBy?: string; url: string }> {
  let approvedBy: string | undefined;
  if (input.approval) {
    setHandler(
      approve,
      (a: Approval) => {
        approvedBy = a.by;
        return 'approved';
      },
      {
        validator: (a: Approval) => {
          if (approvedBy !== undefined) {
            throw ApplicationFailure.create({ type: 'not-waiting', message: 'already approved' });
          }
          if (!a.by?.trim()) {
            // jobgate answers this type with 422.
            throw ApplicationFailure.create({ type: 'input-rejected', message: 'an approval needs the approver\'s name in "by"' });
          }
        },
      },
    );
    progress(0, input.pages, 'waiting for approval');
    upsertMemo({ waitingFor: ['approve'] });
    await condition(() => approvedBy !== undefined);
    upsertMemo({ waitingFor: [] });
  }
  for (let page = 1; page <= input.pages; page++) {
    progress(page - 1, input.pages, `writing page ${page} of ${input.pages}`);
    try {
      await sleep('1s');
    } catch (err) {
      // Canceled (DELETE /v1/jobs/{id}): say so, and end canceled.
      if (isCancellation(err)) progress(page - 1, input.pages, `canceled after ${page - 1} pages`);
      throw err;
    }
    if (input.fail) {
      throw ApplicationFailure.create({ type: 'report-failed', message: `page ${page} could not be written`, nonRetryable: true });
    }
  }
  progress(input.pages, input.pages, 'done');
  // A file would go to storage; the result stays small and points at it.
  return { pages: input.pages, approvedBy, url: `https://reports.example/${workflowInfo().workflowId}.pdf` };
}
