package hookstream.peer;

import java.nio.charset.StandardCharsets;
import java.time.Duration;

import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.RecordContext;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

/**
 * Stage two: the first copy of an event id within the window goes on, once per output topic (named in
 * a header that the sink reads); later copies are dropped. The ids live in a RocksDB window store
 * whose changelog Kafka Streams writes (and, under exactly_once_v2, commits with the input offsets).
 */
final class Dedup implements Processor<String, byte[], String, byte[]> {
    static final String STORE = "seen";
    private static final String TOPIC = "peer-topic";

    private final long windowMs;
    private final Topics topics;
    private ProcessorContext<String, byte[]> context;
    private WindowStore<String, Long> seen;

    Dedup(Duration window, Topics topics) {
        this.windowMs = window.toMillis();
        this.topics = topics;
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        this.context = context;
        this.seen = context.getStateStore(STORE);
    }

    @Override
    public void process(Record<String, byte[]> record) {
        Peer.PROCESSED.incrementAndGet();
        Header id = record.headers().lastHeader(Normalize.EVENT_ID);
        Header out = record.headers().lastHeader(Normalize.OUT_TOPICS);
        if (id == null || out == null) {
            return;
        }
        String eventId = new String(id.value(), StandardCharsets.UTF_8);
        long now = context.currentSystemTimeMs();
        try (WindowStoreIterator<Long> earlier = seen.fetch(eventId, now - windowMs, now)) {
            if (earlier.hasNext()) {
                return;  // a duplicate
            }
        }
        seen.put(eventId, now, now);
        byte[] contentType = record.headers().lastHeader("content-type").value();
        for (String topic : new String(out.value(), StandardCharsets.UTF_8).split(",")) {
            topics.ensure(topic);
            RecordHeaders headers = new RecordHeaders();
            headers.add("content-type", contentType);
            headers.add(TOPIC, topic.getBytes(StandardCharsets.UTF_8));
            context.forward(new Record<>(record.key(), record.value(), System.currentTimeMillis(), headers));
        }
    }

    /** The sink's topic: the one this output record was made for. */
    static String outTopic(String key, byte[] value, RecordContext context) {
        return new String(context.headers().lastHeader(TOPIC).value(), StandardCharsets.UTF_8);
    }
}
