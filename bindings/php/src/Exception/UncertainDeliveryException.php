<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** The request may have reached WeChat but no answer came; it is not retried, to avoid a duplicate. */
class UncertainDeliveryException extends \RuntimeException implements NotifyException
{
    use CarriesStatus;
}
