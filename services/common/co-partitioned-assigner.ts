// A consumer-group assigner for joins: partition N of every subscribed topic goes to the same
// member, so one process sees both sides of a co-partitioned key (KafkaJS's round robin spreads
// the topics' partitions independently).
import kafkajs, { type PartitionAssigner } from 'kafkajs';

const { AssignerProtocol } = kafkajs;

export const CoPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'FlywheelCoPartitioned',
  version: 0,
  assign({ members, topics }) {
    const memberIds = members.map((m) => m.memberId).sort();
    const assignment = new Map<string, Record<string, number[]>>(memberIds.map((id) => [id, {}]));
    for (const topic of topics) {
      for (const { partitionId } of cluster.findTopicPartitionMetadata(topic)) {
        const owner = assignment.get(memberIds[partitionId % memberIds.length] as string) as Record<
          string,
          number[]
        >;
        (owner[topic] ??= []).push(partitionId);
      }
    }
    return Promise.resolve(
      memberIds.map((memberId) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 0,
          assignment: assignment.get(memberId) ?? {},
          userData: Buffer.alloc(0),
        }),
      })),
    );
  },
  protocol({ topics }) {
    return {
      name: 'FlywheelCoPartitioned',
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    };
  },
});
