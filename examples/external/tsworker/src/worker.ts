// Serves jobgate's external kind "report.build" on its task queue.
//   npm install && npm run build && TEMPORAL_ADDRESS=localhost:7233 npm start
import { NativeConnection, Worker } from '@temporalio/worker';

async function main(): Promise<void> {
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233' });
  const worker = await Worker.create({
    connection,
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: process.env.TASK_QUEUE ?? 'reports',
    workflowsPath: require.resolve('./workflows'),
  });
  await worker.run(); // until SIGINT or SIGTERM
  await connection.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
