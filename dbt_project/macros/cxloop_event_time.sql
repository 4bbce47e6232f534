{#
    Segment's clock-skew correction: event_at = received_at - (sent_at - device_ts). The device clock may be
    wrong, but sent_at - device_ts is a difference of two readings of the same clock, so the offset cancels out
    and the server's received_at anchors the result.
#}
{% macro cxloop_send_delay_ms(device_ts, sent_at) %}
    {{ return(adapter.dispatch('cxloop_send_delay_ms', 'cxloop')(device_ts, sent_at)) }}
{% endmacro %}

{% macro default__cxloop_send_delay_ms(device_ts, sent_at) %}
    {{ dbt.datediff(device_ts, sent_at, 'millisecond') }}
{% endmacro %}

{% macro spark__cxloop_send_delay_ms(device_ts, sent_at) %}
    (unix_millis({{ sent_at }}) - unix_millis({{ device_ts }}))
{% endmacro %}


{% macro cxloop_event_at(received_at, sent_at, device_ts) %}
    {{ return(adapter.dispatch('cxloop_event_at', 'cxloop')(received_at, sent_at, device_ts)) }}
{% endmacro %}

{% macro default__cxloop_event_at(received_at, sent_at, device_ts) %}
    coalesce(
        {{ dbt.dateadd('millisecond', '-1 * (' ~ cxloop_send_delay_ms(device_ts, sent_at) ~ ')', received_at) }},
        {{ received_at }}
    )
{% endmacro %}

{% macro spark__cxloop_event_at(received_at, sent_at, device_ts) %}
    coalesce(
        timestamp_millis(unix_millis({{ received_at }}) - {{ cxloop_send_delay_ms(device_ts, sent_at) }}),
        {{ received_at }}
    )
{% endmacro %}
