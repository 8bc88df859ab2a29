package hookstream.peer;

import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * Output topic names as hookstream derives them (firehose, type, X rule tag), created on first use as
 * hookstream's dedup stage does (the benchmark broker does not auto-create topics).
 */
final class Topics implements AutoCloseable {
    private final String namespace;
    private final int partitions;
    private final Admin admin;
    private final Set<String> known = ConcurrentHashMap.newKeySet();

    Topics(String namespace, String bootstrap, int partitions) {
        this.namespace = namespace;
        this.partitions = partitions;
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        this.admin = Admin.create(props);
    }

    String events() {
        return namespace + ".events";
    }

    String forType(String type) {
        String[] parts = type.split("\\.");
        String name = parts.length > 2 && List.of("com", "org", "net", "io").contains(parts[0])
                ? type.substring(parts[0].length() + 1) : type;
        return namespace + "." + safe(name);
    }

    String forTag(String tag) {
        return namespace + ".x.tag." + safe(tag);
    }

    void ensure(String topic) {
        if (known.contains(topic)) {
            return;
        }
        try {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1)
                    .configs(Map.of("retention.ms", "604800000")))).all().get();
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                throw new IllegalStateException("cannot create " + topic, e.getCause());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        known.add(topic);
    }

    private static String safe(String text) {
        return text.replaceAll("[^a-zA-Z0-9._-]", "");
    }

    @Override
    public void close() {
        admin.close();
    }
}
