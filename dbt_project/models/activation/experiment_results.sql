with

stats as (

    select * from {{ source('analysis', 'experiment_stats') }}

),

final as (

    select
        cast(experiment_id as {{ dbt.type_string() }}) as experiment_id,
        cast(variation_id as {{ dbt.type_string() }}) as variation_id,
        cast(is_control as boolean) as is_control,
        cast(metric as {{ dbt.type_string() }}) as metric,
        cast(units as {{ dbt.type_bigint() }}) as units,
        cast(excluded_units as {{ dbt.type_bigint() }}) as excluded_units,
        cast(conversions as double) as conversions,
        cast(mean as double) as mean,
        cast(control_mean as double) as control_mean,
        cast(abs_lift as double) as abs_lift,
        cast(abs_lift_low as double) as abs_lift_low,
        cast(abs_lift_high as double) as abs_lift_high,
        cast(rel_lift as double) as rel_lift,
        cast(rel_lift_low as double) as rel_lift_low,
        cast(rel_lift_high as double) as rel_lift_high,
        cast(p_value as double) as p_value,
        cast(chance_to_beat_control as double) as chance_to_beat_control,
        cast(cuped_abs_lift as double) as cuped_abs_lift,
        cast(cuped_abs_lift_low as double) as cuped_abs_lift_low,
        cast(cuped_abs_lift_high as double) as cuped_abs_lift_high,
        cast(cuped_p_value as double) as cuped_p_value,
        cast(variance_reduction as double) as variance_reduction,
        cast(srm_p_value as double) as srm_p_value,
        cast(srm as boolean) as srm,
        cast(required_units as {{ dbt.type_bigint() }}) as required_units,
        cast(first_exposure_date as date) as first_exposure_date,
        cast(last_exposure_date as date) as last_exposure_date,
        cast(is_running as boolean) as is_running,
        cast(decision as {{ dbt.type_string() }}) as decision,
        cast(ship_variation as {{ dbt.type_string() }}) as ship_variation,
        cast(decision_reason as {{ dbt.type_string() }}) as decision_reason

    from stats

)

select * from final
